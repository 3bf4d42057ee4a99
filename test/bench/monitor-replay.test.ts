import { describe, expect, it } from 'vitest';
import { oracleOf, replayMonitor, type Stream } from '../../bench/monitor-replay.js';
import type { RampConfidences } from '../../loadgen/ramp-confidences.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { seededRandom } from '../../shared/seeded-random.js';

const ee = loadModelEntry('models', 'fmnist-resnet').manifest.earlyExit!;
const NUM_REQUESTS = 4000;
const WARMUP = 1500;

/**
 * A stream over every ramp of the package: each ramp is confident (0.999) on a share of the
 * requests, agreeing with the full model unless `wrongAt(siteId, i)`, and unsure (0.3, wrong)
 * on the rest.
 */
function streamWhere(confidentShare: number, wrongAt: (siteId: number, i: number) => boolean, seed = 1): Stream {
  const random = seededRandom(seed);
  const siteIds = ee.ramps.map((r) => r.siteId);
  const confidences: RampConfidences = {
    siteIds,
    confidences: siteIds.map(() => new Float32Array(NUM_REQUESTS)),
    predictions: siteIds.map(() => new Int32Array(NUM_REQUESTS)),
    finalPredictions: new Int32Array(NUM_REQUESTS),
  };
  for (let i = 0; i < NUM_REQUESTS; i++) {
    const final = Math.floor(random() * 10);
    confidences.finalPredictions[i] = final;
    siteIds.forEach((siteId, k) => {
      const confident = random() < confidentShare;
      confidences.confidences[k]![i] = confident ? 0.999 : 0.3;
      confidences.predictions[k]![i] = confident && !wrongAt(siteId, i) ? final : (final + 1) % 10;
    });
  }
  return { name: 'synthetic', confidences, numWarmup: WARMUP };
}

describe('replayMonitor', () => {
  it("answers early at ramps that always agree, and counts each answer's saving", () => {
    const stream = streamWhere(0.9, () => false);
    const result = replayMonitor(ee, stream, { name: 'default', overrides: {} }, { seed: 1, maxBatch: 4 });
    // Unsure rows are wrong; the tuner may spend the budget on the few unsure at every ramp (0.1 %).
    expect(result.agreement).toBeGreaterThanOrEqual(0.99);
    expect(result.tenthsBelow99).toBe(0);
    // Nine in ten are confident at the first ramp; the tuner lets them out once it has the evidence.
    expect(result.exitFraction).toBeGreaterThan(0.8);
    expect(result.savingMs).toBeGreaterThan(0);
    const oracle = oracleOf(ee, stream, 0.01);
    expect(oracle.exitFraction).toBeGreaterThan(0.99);
    expect(result.savingMs).toBeLessThanOrEqual(oracle.savingMs);
  });

  it('keeps a confidently wrong ramp within the budget, in compact mode labelling a tenth of exits', () => {
    // The package's first ramp is confident and wrong on one request in ten.
    const first = ee.chosenRamps[0]!;
    const stream = streamWhere(0.9, (siteId, i) => siteId === first && i % 10 === 3);
    const changes: number[] = [];
    const result = replayMonitor(ee, stream, { name: 'default', overrides: {} }, { seed: 2, maxBatch: 4, onChange: (i) => changes.push(i) });
    expect(changes.length).toBeGreaterThan(0);
    expect(result.agreement).toBeGreaterThanOrEqual(0.99);
  });

  it('labels what the variant says: with every exit labelled, the same stream lets out at least as many', () => {
    const stream = streamWhere(0.6, () => false, 3);
    const compact = replayMonitor(ee, stream, { name: 'default', overrides: {} }, { seed: 3, maxBatch: 4 });
    const labelled = replayMonitor(ee, stream, { name: 'all labelled', overrides: {}, labelling: () => 1 }, { seed: 3, maxBatch: 4 });
    expect(labelled.agreement).toBeGreaterThanOrEqual(0.99);
    expect(labelled.exitFraction).toBeGreaterThanOrEqual(compact.exitFraction);
  });
});
