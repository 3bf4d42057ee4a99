import { describe, expect, it } from 'vitest';
import { evaluateHeadNative, headTrainingWork, LARGE_HEAD_WORK, trainHeadNative } from '../../prepare/native-head-trainer.js';
import { evaluateHead } from '../../prepare/ramp-statistics.js';
import { seededRandom, trainHead } from '../../prepare/ramp-trainer.js';

/** Overlapping Gaussian blobs, offset (tests the standardisation fold), with a teacher that knows the centres. */
function problem(n: number, dim: number, numClasses: number, seed: number) {
  const random = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const centres = Array.from({ length: numClasses }, () => Array.from({ length: dim }, () => 2 * gauss()));
  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const teacher = new Float32Array(n * numClasses);
  for (let i = 0; i < n; i++) {
    const c = i % numClasses;
    labels[i] = random() < 0.8 ? c : Math.floor(random() * numClasses); // some label noise
    for (let j = 0; j < dim; j++) features[i * dim + j] = centres[c]![j]! + 2 * gauss() + 30;
    teacher[i * numClasses + c] = 4;
  }
  return { features, labels, teacher };
}

describe('the native-speed head trainer', () => {
  it.each([
    ['feature-map', 0],
    ['feature-map', 0.9],
    ['sequence', 0],
    ['sequence', 0.9],
  ] as const)('trains the same %s head as the TypeScript trainer, up to float32 rounding (distillation %s)', async (kind, distillWeight) => {
    const { features, labels, teacher } = problem(300, 24, 7, 5);
    const train = { features: features.subarray(0, 150 * 24), labels: labels.subarray(0, 150), teacher: teacher.subarray(0, 150 * 7) };
    const options = { seed: 3, epochs: 30, distillWeight };
    const reference = trainHead(kind, train.features, train.labels, 24, 7, options, train.teacher);
    const native = await trainHeadNative(kind, train.features, train.labels, 24, 7, options, train.teacher);
    expect(native.trainAccuracy).toBeCloseTo(reference.trainAccuracy, 1);
    expect(native.head.layers.map((l) => [l.outDim, l.inDim])).toEqual(reference.head.layers.map((l) => [l.outDim, l.inDim]));
    expect(native.head.layers).toHaveLength(kind === 'sequence' ? 2 : 1);
    reference.head.layers.forEach((a, li) => {
      const b = native.head.layers[li]!;
      let maxDiff = 0;
      let maxWeight = 0;
      let maxBiasDiff = 0;
      for (let k = 0; k < a.weights.length; k++) {
        maxDiff = Math.max(maxDiff, Math.abs(a.weights[k]! - b.weights[k]!));
        maxWeight = Math.max(maxWeight, Math.abs(a.weights[k]!));
      }
      for (let k = 0; k < a.bias.length; k++) maxBiasDiff = Math.max(maxBiasDiff, Math.abs(a.bias[k]! - b.bias[k]!));
      expect(maxWeight).toBeGreaterThan(0.01); // it learned something
      expect(maxDiff / maxWeight).toBeLessThan(0.02);
      expect(maxBiasDiff).toBeLessThan(0.02 * Math.max(1, maxWeight));
    });
    // and the held-out half gets the same answers and confidences
    const held = features.subarray(150 * 24);
    const ref = evaluateHead(reference.head, held, 24);
    const out = await evaluateHeadNative(native.head, held, 24);
    const same = out.prediction.reduce((s, p, i) => s + (p === ref.prediction[i] ? 1 : 0), 0) / 150;
    expect(same).toBeGreaterThan(0.97);
    let confDiff = 0;
    for (let i = 0; i < 150; i++) confDiff = Math.max(confDiff, Math.abs(out.confidence[i]! - ref.confidence[i]!));
    expect(confDiff).toBeLessThan(0.05);
  });

  it.each(['feature-map', 'sequence'] as const)('evaluates a %s head exactly as the TypeScript evaluator', async (kind) => {
    const { features, labels } = problem(600, 16, 5, 8);
    const { head } = trainHead(kind, features.subarray(0, 200 * 16), labels.subarray(0, 200), 16, 5, { seed: 1, epochs: 10 });
    const ref = evaluateHead(head, features, 16);
    const out = await evaluateHeadNative(head, features, 16); // 600 rows: more than one run
    expect(Array.from(out.prediction)).toEqual(Array.from(ref.prediction));
    for (let i = 0; i < 600; i++) expect(out.confidence[i]!).toBeCloseTo(ref.confidence[i]!, 4);
  });

  it('refuses inputs that do not fit', async () => {
    await expect(trainHeadNative('feature-map', new Float32Array(10), new Int32Array(3), 4, 2)).rejects.toThrow(/expected 3 × 4/);
    await expect(trainHeadNative('sequence', new Float32Array(0), new Int32Array(0), 4, 2)).rejects.toThrow(/zero samples/);
    const { head } = trainHead('sequence', new Float32Array(8), new Int32Array(2), 4, 2, { epochs: 1 });
    await expect(evaluateHeadNative(head, new Float32Array(10), 5)).rejects.toThrow(/takes 4 features, not 5/);
  });

  it("counts a sequence head's pooler in the training work that picks the native path", () => {
    expect(headTrainingWork('feature-map', 100, 1024, 10, 60)).toBe(100 * 60 * 10 * 1024);
    // BERT-base width, 100 training samples: the pooler alone is 768² per sample and epoch
    expect(headTrainingWork('sequence', 100, 768, 2, 60)).toBe(100 * 60 * (2 * 768 + 768 * 768));
    expect(headTrainingWork('sequence', 100, 768, 2, 60)).toBeGreaterThan(LARGE_HEAD_WORK);
    expect(headTrainingWork('sequence', 30, 128, 2, 60)).toBeLessThan(LARGE_HEAD_WORK); // the bundled text model stays in TypeScript
  });
});

describe('feature extraction batches', () => {
  it('keep 100 small samples a run and shrink for large ones, to bound activation memory', async () => {
    const { featureBatchSize } = await import('../../prepare/site-features.js');
    expect(featureBatchSize([1, 28, 28])).toBe(100);
    expect(featureBatchSize([3, 224, 224])).toBe(6);
    expect(featureBatchSize([3, 2048, 2048])).toBe(1);
  });
});
