/**
 * Early exits end to end: a real controller with --exit-mode, two onnxruntime workers running the
 * bundled fmnist-resnet package, and the client, on requests from the serving part of the data.
 */
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaks } from '../support/leak-check.js';
import { EscapementClient, type InferResponse } from '../../client/escapement-client.js';
import { runOpenLoop } from '../../loadgen/open-loop.js';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { loadDataset } from '../../prepare/dataset.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { asFloat32, bytesOf } from '../../shared/tensor.js';

const MODEL = 'fmnist-resnet';
const entry = loadModelEntry('models', MODEL);
const ee = entry.manifest.earlyExit!;
const dataset = loadDataset('datasets/fashion-mnist-test');
const NUM = 300;
const first = ee.dataset.serveStart;
const inputsFor = (i: number) => [
  { name: 'pixels', dtype: 'float32' as const, shape: [1, 1, 28, 28], data: bytesOf(dataset.inputs.slice((first + i) * 784, (first + i + 1) * 784)) },
];

/** The plain model's predictions for the same requests, computed here. */
async function vanillaPredictions(): Promise<number[]> {
  const session = await ort.InferenceSession.create(entry.onnxPath, { logSeverityLevel: 3 });
  const out = (await session.run({ pixels: new ort.Tensor('float32', dataset.inputs.slice(first * 784, (first + NUM) * 784), [NUM, 1, 28, 28]) })).logits!
    .data as Float32Array;
  await session.release();
  return Array.from({ length: NUM }, (_, r) => {
    const row = Array.from(out.subarray(r * 10, r * 10 + 10));
    return row.indexOf(Math.max(...row));
  });
}

/**
 * Release through the chain (early answers on every batch), compact, and release as the planner
 * runs it by default (the chain only where its early answers pay; at this load the whole model,
 * with a sample of batches on the fused model).
 */
const VARIANTS = [
  { name: 'release through the chain', mode: 'release', args: ['--exit-mode', 'release', '--no-fused-release'], answersEarly: true },
  { name: 'compact', mode: 'compact', args: ['--exit-mode', 'compact'], answersEarly: true },
  { name: 'release, the planner choosing', mode: 'release', args: ['--exit-mode', 'release'], answersEarly: false },
] as const;

describe.each(VARIANTS)('exit mode $name', ({ mode, args, answersEarly }) => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  let responses: InferResponse[];
  let vanilla: number[];
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    vanilla = await vanillaPredictions();
    cluster = await LocalCluster.start({ numWorkers: 2, modelDir: 'models', preload: [MODEL], controllerArgs: [...args] });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
    responses = (await runOpenLoop(client, { model: MODEL, numRequests: NUM, ratePerSec: 400, sloMs: 500, seed: 1, inputsFor })).responses;
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('answers every request exactly once, some of them early at a chosen ramp', () => {
    expect(responses.filter((r) => r !== undefined)).toHaveLength(NUM);
    expect(new Set(responses.map((r) => r.requestId)).size).toBe(NUM);
    // every one answered in time (a failure lists what the others got and why)
    expect(responses.filter((r) => r.status !== 'OK').map((r) => `${r.status}: ${r.message ?? ''}`)).toEqual([]);
    const early = responses.filter((r) => r.early === true);
    if (answersEarly) expect(early.length).toBeGreaterThan(NUM * 0.2);
    expect(responses.filter((r) => r.early !== true).length).toBeGreaterThan(0);
    for (const r of early) {
      expect(ee.chosenRamps).toContain(r.exitRamp);
      expect(r.confidence).toBeGreaterThanOrEqual(ee.initialThresholds[r.exitRamp!]!);
      const probs = Array.from(asFloat32(r.outputs[0]!.data));
      expect(probs.indexOf(Math.max(...probs))).toBe(r.prediction);
    }
  });

  it('monitors exits and agreement, visible in the controller status', async () => {
    const status = await client.status();
    const stats = status.exits.find((e) => e.model === MODEL)!;
    expect(stats.siteIds).toEqual(ee.chosenRamps);
    expect(stats.exitsPerRamp.reduce((a, b) => a + b, 0) + stats.fullAnswers).toBe(NUM);
    expect(stats.numSamples).toBeGreaterThan(0);
    expect(stats.windowAgreement).toBeGreaterThan(0.95);
  });

  it('reports predicted against actual per chain stage in the status', async () => {
    const status = await client.status();
    const mine = status.predictions.filter((p) => p.model === MODEL);
    const stages = new Set(mine.map((p) => p.stage));
    // The planner's release runs the fused model until its exit evidence is informed.
    const chainStages = answersEarly ? ee.chosenRamps.map((s) => `segment->${s}`) : ['fused'];
    for (const stage of ['total', 'start', 'hop', ...chainStages]) expect(stages).toContain(stage);
    for (const p of mine) {
      expect(p.numSamples).toBeGreaterThan(0);
      expect(Number.isFinite(p.p50)).toBe(true);
    }
    // compact batches shed rows, so their last segment ran on fewer rows; release ones never do
    if (mode === 'release' && answersEarly) expect(stages).toContain('final');
  });

  it('answers that ran to the end equal the plain model; early ones agree with it within the budget', () => {
    let agree = 0;
    responses.forEach((r, i) => {
      if (r.early) {
        if (r.prediction === vanilla[i]) agree++;
        return;
      }
      const logits = Array.from(asFloat32(r.outputs[0]!.data));
      expect(logits.indexOf(Math.max(...logits))).toBe(vanilla[i]);
      agree++;
    });
    // thresholds were set for ≥ 99 % agreement on the validation split; allow sampling noise
    expect(agree / NUM).toBeGreaterThan(0.96);
  });
});
