import { describe, expect, it } from 'vitest';
import { evaluateLinearHead, trainLinearHead } from '../../prepare/linear-head-solver.js';
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

describe('the native-speed linear head solver', () => {
  it.each([0, 0.9])('trains the same head as the TypeScript trainer, up to float32 rounding (distillation %s)', async (distillWeight) => {
    const { features, labels, teacher } = problem(300, 24, 7, 5);
    const train = { features: features.subarray(0, 150 * 24), labels: labels.subarray(0, 150), teacher: teacher.subarray(0, 150 * 7) };
    const options = { seed: 3, epochs: 30, distillWeight };
    const reference = trainHead('feature-map', train.features, train.labels, 24, 7, options, train.teacher);
    const native = await trainLinearHead(train.features, train.labels, 24, 7, options, train.teacher);
    expect(native.trainAccuracy).toBeCloseTo(reference.trainAccuracy, 1);
    const [a, b] = [reference.head.layers[0]!, native.head.layers[0]!];
    let maxDiff = 0;
    let maxWeight = 0;
    for (let k = 0; k < a.weights.length; k++) {
      maxDiff = Math.max(maxDiff, Math.abs(a.weights[k]! - b.weights[k]!));
      maxWeight = Math.max(maxWeight, Math.abs(a.weights[k]!));
    }
    expect(maxWeight).toBeGreaterThan(0.01); // it learned something
    expect(maxDiff / maxWeight).toBeLessThan(0.02);
    // and the held-out half gets the same answers and confidences
    const held = features.subarray(150 * 24);
    const ref = evaluateHead(reference.head, held, 24);
    const out = await evaluateLinearHead(native.head, held, 24);
    const same = out.prediction.reduce((s, p, i) => s + (p === ref.prediction[i] ? 1 : 0), 0) / 150;
    expect(same).toBeGreaterThan(0.97);
    let confDiff = 0;
    for (let i = 0; i < 150; i++) confDiff = Math.max(confDiff, Math.abs(out.confidence[i]! - ref.confidence[i]!));
    expect(confDiff).toBeLessThan(0.05);
  });

  it('evaluates exactly as the TypeScript evaluator on the same head', async () => {
    const { features, labels } = problem(600, 16, 5, 8);
    const { head } = trainHead('feature-map', features.subarray(0, 200 * 16), labels.subarray(0, 200), 16, 5, { seed: 1, epochs: 10 });
    const ref = evaluateHead(head, features, 16);
    const out = await evaluateLinearHead(head, features, 16); // 600 rows: more than one run
    expect(Array.from(out.prediction)).toEqual(Array.from(ref.prediction));
    for (let i = 0; i < 600; i++) expect(out.confidence[i]!).toBeCloseTo(ref.confidence[i]!, 4);
  });

  it('refuses inputs that do not fit', async () => {
    await expect(trainLinearHead(new Float32Array(10), new Int32Array(3), 4, 2)).rejects.toThrow(/expected 3 × 4/);
    await expect(trainLinearHead(new Float32Array(0), new Int32Array(0), 4, 2)).rejects.toThrow(/zero samples/);
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
