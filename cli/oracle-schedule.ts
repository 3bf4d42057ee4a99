/**
 * The oracle baseline of `compare --oracle`: per window of the run, the thresholds that, in
 * hindsight, save the most time while the window's own answers keep agreement with the full model
 * within the budget (1 %). It knows every ramp's confidence on every request of the window
 * (loadgen/ramp-confidences.ts), so it bounds what online tuning, which learns from the past
 * window, can reach. The search is the controller's (controller/threshold-tuner.ts) with the
 * observed rate in place of its upper bound (z = 0) and every observed confidence a candidate.
 */
import { tuneThresholds, type TunerRamp, type TunerSample } from '../shared/threshold-tuner.js';
import type { EarlyExitSection } from '../shared/early-exit-manifest.js';
import type { RampConfidences } from '../loadgen/ramp-confidences.js';

/** The tuner's view of a package's ramps, as the controller builds it (controller/model-spec.ts). */
export function tunerRampsOf(ee: EarlyExitSection, siteIds: readonly number[]): { ramps: TunerRamp[]; wholeMs: number } {
  const ref = String(ee.profile.referenceBatchSize);
  const ramps = siteIds.map((siteId) => ({
    siteId,
    upToMs: ee.profile.siteUpToMs[siteId]![ref]!,
    costMs: ee.ramps.find((r) => r.siteId === siteId)!.costMs[ref]!,
  }));
  return { ramps, wholeMs: ee.profile.wholeMs[ref]! };
}

/** Thresholds per window (ramps in `confidences.siteIds` order); `windowOf(i)` is request i's window. */
export function oracleSchedule(
  confidences: RampConfidences,
  windowOf: (index: number) => number,
  numWindows: number,
  ramps: readonly TunerRamp[],
  wholeMs: number,
  budget = 0.01,
): number[][] {
  const samples: TunerSample[][] = Array.from({ length: numWindows }, () => []);
  const n = confidences.finalPredictions.length;
  for (let i = 0; i < n; i++) {
    samples[windowOf(i)]!.push({
      confidences: confidences.confidences.map((c) => c[i]!),
      predictions: confidences.predictions.map((p) => p[i]!),
      finalPrediction: confidences.finalPredictions[i]!,
    });
  }
  return samples.map((window) => tuneThresholds(window, ramps, wholeMs, { budget, z: 0, maxCandidates: Math.max(1, window.length) }).thresholds);
}
