import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../onnx/onnx-proto.js';
import { buildHeadModel, headOutputName } from '../../prepare/ramp-heads.js';
import { selectRamps, type RampCandidate } from '../../prepare/ramp-selection.js';
import { evaluateHead, thresholdForBudget, validateRamp } from '../../prepare/ramp-statistics.js';
import { seededRandom, trainHead } from '../../prepare/ramp-trainer.js';

/** Gaussian blobs: class c is centred at a random point; `noise` controls overlap. */
function blobs(n: number, dim: number, numClasses: number, noise: number, seed: number) {
  const random = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const centres = Array.from({ length: numClasses }, () => Array.from({ length: dim }, () => 4 * gauss()));
  const features = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % numClasses;
    labels[i] = c;
    for (let j = 0; j < dim; j++) features[i * dim + j] = centres[c]![j]! + noise * gauss() + 50; // offset: tests the standardisation fold
  }
  return { features, labels };
}

describe('ramp head training', () => {
  it.each(['feature-map', 'sequence'] as const)('a %s head learns separable classes far above chance', (kind) => {
    const all = blobs(600, 8, 5, 1.5, 1); // one set of centres; train on half, test on the other half
    const train = { features: all.features.subarray(0, 300 * 8), labels: all.labels.subarray(0, 300) };
    const test = { features: all.features.subarray(300 * 8), labels: all.labels.subarray(300) };
    const result = trainHead(kind, train.features, train.labels, 8, 5, { seed: 7, epochs: 40 });
    expect(result.trainAccuracy).toBeGreaterThan(0.9);
    const outputs = evaluateHead(result.head, test.features, 8);
    const accuracy = outputs.prediction.reduce((s, p, i) => s + (p === test.labels[i] ? 1 : 0), 0) / 300;
    expect(accuracy).toBeGreaterThan(0.9); // chance is 0.2
  });

  it('with distillation, follows the teacher rather than the hard labels', () => {
    // The teacher separates the blobs; the hard labels are shuffled noise. At full distillation
    // weight the head learns the teacher's rule; with none it can only fit the noise.
    const { features, labels } = blobs(400, 6, 4, 1, 9);
    const random = seededRandom(11);
    const noisy = Int32Array.from(labels, () => Math.floor(random() * 4));
    const teacher = new Float32Array(400 * 4);
    for (let i = 0; i < 400; i++) teacher[i * 4 + labels[i]!] = 5;
    const agreementWithTeacher = (distillWeight: number) => {
      const { head } = trainHead(
        'feature-map',
        features.subarray(0, 200 * 6),
        noisy.subarray(0, 200),
        6,
        4,
        { seed: 2, distillWeight, temperature: 4 },
        teacher.subarray(0, 200 * 4),
      );
      const out = evaluateHead(head, features.subarray(200 * 6), 6);
      return out.prediction.reduce((s, p, i) => s + (p === labels[200 + i] ? 1 : 0), 0) / 200;
    };
    expect(agreementWithTeacher(1)).toBeGreaterThan(0.9);
    expect(agreementWithTeacher(0)).toBeLessThan(0.6);
    expect(() => trainHead('feature-map', features, labels, 6, 4, {}, new Float32Array(3))).toThrow(/teacher logits/);
  });

  it('is deterministic under a seed and varies with it', () => {
    const { features, labels } = blobs(200, 6, 4, 3, 2);
    const a = trainHead('sequence', features, labels, 6, 4, { seed: 3, epochs: 5 });
    const b = trainHead('sequence', features, labels, 6, 4, { seed: 3, epochs: 5 });
    const c = trainHead('sequence', features, labels, 6, 4, { seed: 4, epochs: 5 });
    expect(Buffer.from(a.head.layers[0]!.weights.buffer)).toEqual(Buffer.from(b.head.layers[0]!.weights.buffer));
    expect(Buffer.from(a.head.layers[0]!.weights.buffer)).not.toEqual(Buffer.from(c.head.layers[0]!.weights.buffer));
  });

  it.each(['feature-map', 'sequence'] as const)('the ONNX %s head computes what the trainer evaluated', async (kind) => {
    const { features, labels } = blobs(40, 6, 3, 2, 5);
    const { head } = trainHead(kind, features, labels, 6, 3, { seed: 1, epochs: 5 });
    // A tensor whose pooling gives exactly the features: constant over H×W (or over tokens).
    const shape = kind === 'feature-map' ? [40, 6, 2, 3] : [40, 4, 6];
    const data = new Float32Array(shape.reduce((p, d) => p * d, 1));
    for (let i = 0; i < 40; i++) {
      for (let k = 0; k < data.length / 40; k++) {
        const j = kind === 'feature-map' ? Math.floor(k / 6) : k % 6;
        data[i * (data.length / 40) + k] = features[i * 6 + j]!;
      }
    }
    const model = buildHeadModel(0, 'site_tensor', [-1, ...shape.slice(1)], 1, head);
    const session = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
    const probs = (await session.run({ site_tensor: new ort.Tensor('float32', data, shape) }))[headOutputName(0)]!.data as Float32Array;
    await session.release();
    const expected = evaluateHead(head, features, 6);
    for (let i = 0; i < 40; i++) {
      const row = Array.from(probs.subarray(i * 3, i * 3 + 3));
      expect(Math.max(...row)).toBeCloseTo(expected.confidence[i]!, 4);
      expect(row.indexOf(Math.max(...row))).toBe(expected.prediction[i]);
    }
  });
});

describe('ramp statistics', () => {
  const final = Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);

  it('picks the lowest threshold whose disagreements fit the budget', () => {
    // confident and right, then a confident mistake, then less confident
    const outputs = {
      confidence: Float32Array.from([0.99, 0.98, 0.97, 0.96, 0.95, 0.6, 0.5, 0.4, 0.3, 0.2]),
      prediction: Int32Array.from([0, 1, 2, 3, 9, 1, 2, 3, 0, 1]),
    };
    expect(thresholdForBudget(outputs, final, 0)).toMatchObject({ threshold: Math.fround(0.96), exitFraction: 0.4, agreement: 1 });
    const loose = thresholdForBudget(outputs, final, 0.1);
    expect(loose.exitFraction).toBe(1);
    expect(loose.agreement).toBeCloseTo(0.9);
  });

  it('never separates equal confidences with a threshold', () => {
    const outputs = { confidence: Float32Array.from([0.9, 0.9, 0.9, 0.5]), prediction: Int32Array.from([0, 1, 9, 3]) };
    const result = thresholdForBudget(outputs, Int32Array.from([0, 1, 2, 3]), 0);
    expect(result.exitFraction).toBe(0);
    expect(result.threshold).toBeGreaterThan(1);
  });

  it('reports agreement, accuracy and a confidence histogram', () => {
    const outputs = { confidence: Float32Array.from([0.99, 0.51, 0.26, 0.74]), prediction: Int32Array.from([0, 1, 5, 3]) };
    const v = validateRamp(outputs, Int32Array.from([0, 1, 2, 3]), Int32Array.from([0, 0, 5, 3]), 0.01);
    expect(v.agreement).toBe(0.75);
    expect(v.accuracy).toBe(0.75);
    expect(v.histogram.counts.reduce((a, b) => a + b, 0)).toBe(4);
    expect(v.histogram.counts[19]).toBe(1);
  });
});

describe('initial ramp choice', () => {
  const n = 100;
  const final = Int32Array.from({ length: n }, (_, i) => i % 10);
  const ramp = (siteId: number, upToMs: number, costMs: number, exitShare: number): RampCandidate => ({
    siteId,
    upToMs,
    costMs,
    // confident and right on the first `exitShare` of the samples, unsure and wrong on the rest
    outputs: {
      confidence: Float32Array.from({ length: n }, (_, i) => (i < exitShare * n ? 0.95 : 0.5)),
      prediction: Int32Array.from(final, (p, i) => (i < exitShare * n ? p : (p + 1) % 10)),
    },
  });

  it('takes the ramp with the best saving per ms of cost and stops when nothing helps', () => {
    const early = ramp(0, 2, 0.1, 0.5); // exits half the samples 8 ms early
    const useless = ramp(1, 5, 0.1, 0); // never exits
    const result = selectRamps([useless, early], final, 10, { maxRamps: 3, overheadBudget: 0.05, accuracyBudget: 0.01 });
    expect(result.chosen).toEqual([0]);
    expect(result.savingMs).toBeCloseTo(0.5 * 7.9 - 0.5 * 0.1, 6);
    expect(result.exitFractions).toEqual([0.5]);
    expect(result.thresholds).toEqual([Math.fround(0.95)]);
  });

  it('splits the accuracy budget so the cascade keeps agreement within it', () => {
    // each ramp alone may disagree on 1 sample in 100; two ramps get half a sample each: none
    const noisy = (siteId: number, upToMs: number): RampCandidate => ({
      siteId,
      upToMs,
      costMs: 0.01,
      outputs: {
        confidence: Float32Array.from({ length: n }, (_, i) => 0.99 - i / 1000),
        prediction: Int32Array.from(final, (p, i) => (i === siteId ? (p + 1) % 10 : p)),
      },
    });
    const result = selectRamps([noisy(0, 2), noisy(1, 3)], final, 10, { maxRamps: 3, overheadBudget: 0.05, accuracyBudget: 0.01 });
    expect(result.agreement).toBeGreaterThanOrEqual(0.99);
  });

  it('respects the overhead budget and the ramp count', () => {
    const costly = ramp(0, 1, 2, 0.9); // would save a lot but costs 20 % of the model
    const cheapA = ramp(1, 3, 0.2, 0.3);
    const cheapB = ramp(2, 6, 0.2, 0.6);
    const result = selectRamps([costly, cheapA, cheapB], final, 10, { maxRamps: 1, overheadBudget: 0.05, accuracyBudget: 0.01 });
    expect(result.chosen).toHaveLength(1);
    expect(result.chosen).not.toContain(0);
    expect(result.overheadMs).toBeLessThanOrEqual(0.5);
  });
});
