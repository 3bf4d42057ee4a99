/**
 * The bundled packages in models/ (made by `npm run zoo`): they load, their committed segment
 * chains reproduce their models on real data at several batch sizes, and their ramps learned.
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../prepare/dataset.js';
import { loadModelEntry } from '../../shared/model-manifest.js';

/** fmnist-resnet-112 scored 88.05 % on the whole test set; its serving part, 100 images here, is checked with slack. */
const MIN_112_ACCURACY = 0.8;

const ZOO = [
  { name: 'fmnist-resnet', dataset: 'datasets/fashion-mnist-test', minSites: 9, minBackboneAccuracy: 0.91, accuracySamples: 500 },
  { name: 'mnist-cnn', dataset: 'datasets/mnist-digits', minSites: 4, minBackboneAccuracy: 0.9, accuracySamples: 500 },
  // ~20 ms an image: fewer images for the accuracy check, whole and chained
  { name: 'fmnist-resnet-112', dataset: 'datasets/fashion-mnist-test', minSites: 9, minBackboneAccuracy: MIN_112_ACCURACY, accuracySamples: 100 },
];

describe.each(ZOO)('the bundled $name package', ({ name, dataset: datasetPath, minSites, minBackboneAccuracy, accuracySamples }) => {
  const entry = loadModelEntry('models', name);
  const ee = entry.manifest.earlyExit!;
  const dataset = loadDataset(datasetPath);
  const sampleShape = entry.manifest.inputs[0]!.shape.slice(1);
  const size = sampleShape.reduce((a, b) => a * b, 1);
  const feeds = (start: number, n: number) => ({
    [ee.primaryInput]: new ort.Tensor('float32', dataset.inputs.slice(start * size, (start + n) * size), [n, ...sampleShape]),
  });

  it('loads, with sites after the stem and every block, and bootstrap provenance', () => {
    expect(ee.sites.length).toBeGreaterThanOrEqual(minSites);
    expect(ee.dataset).toMatchObject({ bootstrapFraction: 0.1, trainVal: [1, 9], serveStart: 1000, labels: 'model' });
    expect(ee.verification.predictionAgreement).toBe(1);
  });

  it("runs its committed segment chain to the model's outputs at batch sizes 1, 5 and 16", async () => {
    const whole = await ort.InferenceSession.create(entry.onnxPath, { intraOpNumThreads: 1, logSeverityLevel: 3 });
    const segments = [];
    for (const s of ee.segments) segments.push(await ort.InferenceSession.create(join('models', name, s.file), { intraOpNumThreads: 1, logSeverityLevel: 3 }));
    let correct = 0;
    let total = 0;
    for (const [start, n] of [
      [1000, 1],
      [1001, 5],
      [1006, 16],
      [2000, accuracySamples],
    ] as const) {
      const f = feeds(start, n);
      const expected = (await whole.run(f))[ee.finalOutput]!.data as Float32Array;
      const env: Record<string, ort.Tensor> = { ...f };
      for (const [i, s] of ee.segments.entries()) Object.assign(env, await segments[i]!.run(Object.fromEntries(s.inputs.map((x) => [x, env[x]!]))));
      const got = env[ee.finalOutput]!.data as Float32Array;
      let maxDiff = 0;
      for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
      expect(maxDiff).toBeLessThan(1e-3);
      for (let i = 0; i < n; i++) {
        const row = Array.from(got.subarray(i * ee.numClasses, (i + 1) * ee.numClasses));
        if (row.indexOf(Math.max(...row)) === dataset.labels![start + i]) correct++;
        total++;
      }
    }
    expect(correct / total).toBeGreaterThan(minBackboneAccuracy);
    for (const s of [whole, ...segments]) await s.release();
  });

  it('has ramps that beat chance clearly, better the deeper they sit', () => {
    const chance = 1 / ee.numClasses;
    const accuracies = ee.ramps.map((r) => r.validation.accuracy!);
    expect(Math.max(...accuracies)).toBeGreaterThan(5 * chance);
    expect(accuracies.at(-1)!).toBeGreaterThan(accuracies[Math.floor(accuracies.length / 3)]!);
    for (const r of ee.ramps) expect(r.validation.agreementAtThreshold).toBeGreaterThanOrEqual(0.99);
  });
});

describe('the fmnist-resnet backbone', () => {
  it('spreads its compute over three stages, none above 45 %', () => {
    const ee = loadModelEntry('models', 'fmnist-resnet').manifest.earlyExit!;
    const siteAt = (producer: string) => ee.sites.find((s) => s.producer === producer)!.id;
    const endOfStage1 = siteAt('/blocks/blocks.2/Relu_1');
    const endOfStage2 = siteAt('/blocks/blocks.5/Relu_1');
    expect(ee.sites.filter((s) => /blocks\.\d+\/Relu_1$/.test(s.producer))).toHaveLength(9); // 9 residual blocks
    for (const b of ['1', '4', '16']) {
      const wholeMs = ee.profile.wholeMs[b]!;
      const stage1 = ee.profile.siteUpToMs[endOfStage1]![b]!;
      const stage2 = ee.profile.siteUpToMs[endOfStage2]![b]! - stage1;
      const shares = [stage1, stage2, wholeMs - stage1 - stage2].map((ms) => ms / wholeMs);
      for (const share of shares) expect(share).toBeLessThan(0.45);
    }
  });
});
