import { describe, expect, it } from 'vitest';
import { oracleSchedule, tunerRampsOf } from '../../cli/oracle-schedule.js';
import type { RampConfidences } from '../../loadgen/ramp-confidences.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { seededRandom } from '../../shared/seeded-random.js';

const RAMPS = [
  { siteId: 1, upToMs: 1, costMs: 0.01 },
  { siteId: 2, upToMs: 2, costMs: 0.01 },
];

/**
 * 200 requests in two windows: in the first, every ramp is right whenever it is confident; in the
 * second, the first ramp is wrong on a third of its confident answers (a drift only hindsight knows).
 */
function run(): { confidences: RampConfidences; windowOf: (i: number) => number } {
  const random = seededRandom(4);
  const n = 200;
  const windowOf = (i: number) => (i < 100 ? 0 : 1);
  const finals = Int32Array.from({ length: n }, () => Math.floor(random() * 5));
  const confidences = RAMPS.map(() => Float32Array.from({ length: n }, () => 0.2 + 0.8 * random()));
  const predictions = RAMPS.map((_, r) =>
    Int32Array.from({ length: n }, (_, i) => {
      const confident = confidences[r]![i]! > 0.6;
      const wrong = !confident || (r === 0 && windowOf(i) === 1 && random() < 1 / 3);
      return wrong ? (finals[i]! + 1) % 5 : finals[i]!;
    }),
  );
  return { confidences: { siteIds: RAMPS.map((r) => r.siteId), confidences, predictions, finalPredictions: finals }, windowOf };
}

/** Agreement and exits of the cascade at `thresholds` over the requests of one window. */
function outcome(c: RampConfidences, windowOf: (i: number) => number, window: number, thresholds: number[]) {
  let n = 0;
  let agree = 0;
  let exits = 0;
  for (let i = 0; i < c.finalPredictions.length; i++) {
    if (windowOf(i) !== window) continue;
    n++;
    const r = thresholds.findIndex((t, k) => c.confidences[k]![i]! >= t);
    if (r >= 0) exits++;
    if (r < 0 || c.predictions[r]![i] === c.finalPredictions[i]) agree++;
  }
  return { agreement: agree / n, exitFraction: exits / n };
}

describe("the oracle's thresholds", () => {
  it('at a smaller budget (compare --safe-oracle-budget), answers no more early and disagrees no more in any window', () => {
    const { confidences, windowOf } = run();
    const full = oracleSchedule(confidences, windowOf, 2, RAMPS, 10);
    const safe = oracleSchedule(confidences, windowOf, 2, RAMPS, 10, 0.002);
    for (const w of [0, 1]) {
      // 0.2 % of a window's 100 requests allows no disagreement at all
      expect(outcome(confidences, windowOf, w, safe[w]!).agreement).toBe(1);
      expect(outcome(confidences, windowOf, w, safe[w]!).exitFraction).toBeLessThanOrEqual(outcome(confidences, windowOf, w, full[w]!).exitFraction);
    }
  });

  it("per window, exit as much as the window's own answers allow within the 1 % budget", () => {
    const { confidences, windowOf } = run();
    const schedule = oracleSchedule(confidences, windowOf, 2, RAMPS, 10);
    expect(schedule).toHaveLength(2);
    for (const w of [0, 1]) {
      const { agreement } = outcome(confidences, windowOf, w, schedule[w]!);
      expect(agreement).toBeGreaterThanOrEqual(0.99);
    }
    // window 0: both ramps answer everything they are sure of
    expect(outcome(confidences, windowOf, 0, schedule[0]!).exitFraction).toBeGreaterThan(0.6);
    // window 1: the first ramp's confident answers are no longer safe, so it is held back (or off) there
    expect(schedule[1]![0]!).toBeGreaterThan(schedule[0]![0]!);
    // and one window's thresholds applied to the other break that window's budget
    expect(outcome(confidences, windowOf, 1, schedule[0]!).agreement).toBeLessThan(0.99);
  });

  it("sees the package's ramps as the controller does", () => {
    const ee = loadModelEntry('models', 'fmnist-resnet').manifest.earlyExit!;
    const { ramps, wholeMs } = tunerRampsOf(ee, ee.chosenRamps);
    expect(ramps.map((r) => r.siteId)).toEqual(ee.chosenRamps);
    expect(wholeMs).toBe(ee.profile.wholeMs[String(ee.profile.referenceBatchSize)]);
    for (const r of ramps) expect(r.upToMs).toBeLessThan(wholeMs);
  });
});
