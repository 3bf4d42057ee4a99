import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DISABLED_THRESHOLD, tuneThresholds, wilsonUpperBound, type TunerRamp, type TunerSample } from '../../shared/threshold-tuner.js';
import { loadDataset } from '../../prepare/dataset.js';
import { decodeModel } from '../../onnx/onnx-proto.js';
import { extractSiteFeatures } from '../../prepare/site-features.js';
import { evaluateHead } from '../../prepare/ramp-statistics.js';
import { seededRandom } from '../../prepare/ramp-trainer.js';
import type { HeadWeights } from '../../prepare/ramp-heads.js';
import { loadModelEntry } from '../../shared/model-manifest.js';

const RAMPS: TunerRamp[] = [
  { siteId: 1, upToMs: 2, costMs: 0.05 },
  { siteId: 2, upToMs: 5, costMs: 0.05 },
  { siteId: 3, upToMs: 8, costMs: 0.05 },
];

/**
 * A calibrated-ish stream: deeper ramps are more confident; the chance of disagreeing falls with
 * confidence. `hardness` > 1 models drift to harder data on which the ramps stay as confident but
 * are wrong more often (the dangerous kind of drift).
 */
function stream(n: number, seed: number, hardness = 1): TunerSample[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => {
    const finalPrediction = Math.floor(random() * 10);
    const confidences: number[] = [];
    const predictions: number[] = [];
    for (let r = 0; r < 3; r++) {
      const c = Math.min(0.999, 0.35 + 0.2 * r + 0.45 * random());
      confidences.push(c);
      predictions.push(random() < Math.min(1, 1.6 * hardness * (1 - c) ** 2) ? (finalPrediction + 1) % 10 : finalPrediction);
    }
    return { confidences, predictions, finalPrediction };
  });
}

function agreementOn(samples: TunerSample[], thresholds: number[]): { agreement: number; exits: number } {
  let disagree = 0;
  let exits = 0;
  for (const s of samples) {
    const r = s.confidences.findIndex((c, i) => c >= thresholds[i]!);
    if (r < 0) continue;
    exits++;
    if (s.predictions[r] !== s.finalPrediction) disagree++;
  }
  return { agreement: 1 - disagree / samples.length, exits: exits / samples.length };
}

describe('weighted samples (compact mode keeps 1 in 10 exits, each standing for 10)', () => {
  const one: TunerRamp[] = [{ siteId: 1, upToMs: 2, costMs: 0.05 }];
  const stay = (n: number): TunerSample[] => Array.from({ length: n }, () => ({ confidences: [0.3], predictions: [1], finalPrediction: 0 }));
  const agreeingExits = (n: number, weight: number): TunerSample[] =>
    Array.from({ length: n }, (_, i) => ({ confidences: [0.9 + i * 1e-5], predictions: [3], finalPrediction: 3, weight }));

  it('trusts 500 observed agreeing exits, but not 50 observations weighted up to 500', () => {
    const observed = tuneThresholds([...stay(200), ...agreeingExits(500, 1)], one, 10);
    expect(observed.thresholds[0]).toBeLessThan(1);
    expect(observed.disagreementUpperBound).toBeLessThanOrEqual(0.01);
    // Same weighted totals, a tenth of the evidence: the bound must not be met.
    const weighted = tuneThresholds([...stay(200), ...agreeingExits(50, 10)], one, 10);
    expect(weighted.thresholds[0]).toBe(DISABLED_THRESHOLD);
  });
});

describe('wilsonUpperBound', () => {
  it('bounds the true rate from above and tightens with more samples', () => {
    expect(wilsonUpperBound(0, 100, 1.645)).toBeGreaterThan(0.02);
    expect(wilsonUpperBound(0, 1000, 1.645)).toBeLessThan(0.003);
    expect(wilsonUpperBound(10, 1000, 1.645)).toBeGreaterThan(0.01);
    expect(wilsonUpperBound(10, 1000, 1.645)).toBeLessThan(0.02);
  });
});

describe('threshold tuning on a synthetic stream', () => {
  it('keeps agreement >= 99 % on a held-out continuation while exiting a good share early', () => {
    const result = tuneThresholds(stream(600, 1), RAMPS, 10);
    expect(result.disagreementUpperBound).toBeLessThanOrEqual(0.01);
    const heldOut = agreementOn(stream(20_000, 2), result.thresholds);
    expect(heldOut.agreement).toBeGreaterThanOrEqual(0.99);
    expect(heldOut.exits).toBeGreaterThan(0.3);
    expect(result.expectedSavingMs).toBeGreaterThan(1);
  });

  it('can admit exactly a point mass at the top confidence (a saturated softmax) when thinning its candidates', () => {
    // 600 rows at exactly 1 that agree, 300 distinct lower scores that disagree: only threshold 1 fits the budget.
    const samples: TunerSample[] = [
      ...Array.from({ length: 600 }, () => ({ confidences: [1], predictions: [3], finalPrediction: 3 })),
      ...Array.from({ length: 300 }, (_, i) => ({ confidences: [0.5 + i / 1000], predictions: [4], finalPrediction: 3 })),
    ];
    const result = tuneThresholds(samples, RAMPS.slice(0, 1), 10);
    expect(result.thresholds).toEqual([1]);
    expect(result.exitFractions[0]).toBeCloseTo(600 / 900, 9);
  });

  it('keeps every ramp off when the window is too small to bound the risk', () => {
    const result = tuneThresholds(stream(50, 3), RAMPS, 10);
    expect(result.thresholds).toEqual([DISABLED_THRESHOLD, DISABLED_THRESHOLD, DISABLED_THRESHOLD]);
  });

  it('raises thresholds when the data drifts harder, holding agreement on the new data', () => {
    const easy = tuneThresholds(stream(600, 4), RAMPS, 10);
    const hard = stream(20_000, 5, 6);
    expect(agreementOn(hard, easy.thresholds).agreement).toBeLessThan(0.99); // the old thresholds now violate
    const retuned = tuneThresholds(stream(600, 6, 6), RAMPS, 10);
    expect(agreementOn(hard, retuned.thresholds).agreement).toBeGreaterThanOrEqual(0.99);
    expect(agreementOn(hard, retuned.thresholds).exits).toBeLessThan(agreementOn(hard, easy.thresholds).exits);
  });

  it("passes over a later ramp's candidates whose samples exit earlier, rather than spend the budget on an early disagreement", () => {
    // Ramp A answers 50 inputs safely, then one wrongly (at 0.98); ramp B's most confident inputs
    // are A's 50 (idle candidates: they exit at A), then 200 safe ones at 0.9. Taking A's
    // disagreement first leaves too little budget for B's 200 (the bound with 1 disagreement in
    // 251 exits is just above 1 % of 430); B's safe exits first is the better answer, and feasible.
    const wrong = 1;
    const sample = (a: [number, number], b: [number, number]): TunerSample => ({ confidences: [a[0], b[0]], predictions: [a[1], b[1]], finalPrediction: 0 });
    const samples = [
      ...Array.from({ length: 50 }, () => sample([0.99, 0], [0.999, 0])),
      sample([0.98, wrong], [0.1, wrong]),
      ...Array.from({ length: 200 }, () => sample([0.1, wrong], [0.9, 0])),
      ...Array.from({ length: 179 }, () => sample([0.1, wrong], [0.1, wrong])),
    ];
    const ramps: TunerRamp[] = [
      { siteId: 1, upToMs: 1, costMs: 0 },
      { siteId: 2, upToMs: 2, costMs: 0 },
    ];
    const result = tuneThresholds(samples, ramps, 4);
    expect(result.thresholds).toEqual([0.99, 0.9]);
    expect(result.disagreementRate).toBe(0);
    expect(result.expectedSavingMs).toBeCloseTo((50 * 3 + 200 * 2) / 430, 9);
  });

  it('never sets a threshold below the lowest confidence that exits at its ramp in the window', () => {
    // Every sample ramp B is confident on exits at A first: B has no evidence of its own and stays off.
    const samples: TunerSample[] = Array.from({ length: 600 }, (_, i) => ({
      confidences: i < 400 ? [0.95, 0.99] : [0.2, 0.3],
      predictions: i < 400 ? [0, 0] : [1, 1],
      finalPrediction: 0,
    }));
    const ramps: TunerRamp[] = [
      { siteId: 1, upToMs: 1, costMs: 0 },
      { siteId: 2, upToMs: 2, costMs: 0 },
    ];
    const result = tuneThresholds(samples, ramps, 4);
    expect(result.thresholds).toEqual([0.95, DISABLED_THRESHOLD]);
  });

  it('counts sampled requests by their weight', () => {
    const samples = stream(600, 7);
    const weighted = samples.map((s, i) => ({ ...s, weight: i % 2 === 0 ? 10 : 1 }));
    const result = tuneThresholds(weighted, RAMPS, 10);
    expect(result.disagreementUpperBound).toBeLessThanOrEqual(0.01);
  });
});

describe('threshold tuning on recorded confidences of the bundled fmnist-resnet ramps', () => {
  it('chooses thresholds on 600 served requests that hold 99 % agreement on the next 3,000', async () => {
    const entry = loadModelEntry('models', 'fmnist-resnet');
    const ee = entry.manifest.earlyExit!;
    const dataset = loadDataset('datasets/fashion-mnist-test');
    dataset.sampleShape = [1, 28, 28];
    const model = decodeModel(readFileSync(entry.onnxPath));
    const sites = ee.chosenRamps.map((id) => ee.sites.find((s) => s.id === id)!).map((s) => ({ ...s, afterNode: -1, producerName: s.producer }));
    const start = ee.dataset.serveStart;
    const features = await extractSiteFeatures(model, ee.primaryInput, ee.finalOutput, sites, dataset, { start, end: start + 3600 });
    const heads = ee.chosenRamps.map((id) => headWeights(`models/fmnist-resnet/ramp_${id}.onnx`, id));
    const outputs = ee.chosenRamps.map((id, r) => evaluateHead(heads[r]!, features.features.get(id)!, features.dims.get(id)!));
    const samples: TunerSample[] = Array.from({ length: 3600 }, (_, i) => ({
      confidences: outputs.map((o) => o.confidence[i]!),
      predictions: outputs.map((o) => o.prediction[i]!),
      finalPrediction: features.modelPredictions[i]!,
    }));
    const ramps = ee.chosenRamps.map((id) => ({
      siteId: id,
      upToMs: ee.profile.siteUpToMs[id]!['4']!,
      costMs: ee.ramps.find((r) => r.siteId === id)!.costMs['4']!,
    }));
    const result = tuneThresholds(samples.slice(0, 600), ramps, ee.profile.wholeMs['4']!);
    const heldOut = agreementOn(samples.slice(600), result.thresholds);
    expect(heldOut.agreement).toBeGreaterThanOrEqual(0.99);
    expect(heldOut.exits).toBeGreaterThan(0.2);
  });
});

/** Reads a CV ramp head's weights back from its ONNX file. */
function headWeights(path: string, siteId: number): HeadWeights {
  const model = decodeModel(readFileSync(path));
  const init = (name: string) => model.graph!.initializer!.find((t) => t.name === name)!;
  const floats = (name: string) => {
    const raw = init(name).rawData!;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  };
  const w = init(`ramp${siteId}_w0`);
  const [outDim, inDim] = w.dims!.map(Number) as [number, number];
  return { kind: 'feature-map', layers: [{ weights: floats(`ramp${siteId}_w0`), bias: floats(`ramp${siteId}_b0`), inDim, outDim }] };
}
