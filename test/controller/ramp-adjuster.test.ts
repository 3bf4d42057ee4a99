import { describe, expect, it } from 'vitest';
import { ExitMonitor } from '../../controller/exit-monitor.js';
import { adjustRamps, cumulativeExitShares, marginalPriorUtilityMs, rampUtilities, type CandidateSite } from '../../controller/ramp-adjuster.js';
import { DISABLED_THRESHOLD, type TunerSample } from '../../shared/threshold-tuner.js';

const WHOLE_MS = 10;
const useful = { siteId: 3, upToMs: 3, costMs: 0.05 };
const useless = { siteId: 6, upToMs: 6, costMs: 0.2 };

/** Half the requests are confident at ramp 3; nobody is confident at ramp 6. */
const samples: TunerSample[] = Array.from({ length: 400 }, (_, i) => ({
  confidences: [i % 2 === 0 ? 0.99 : 0.4, 0.3],
  predictions: [1, 1],
  finalPrediction: 1,
}));

const candidates: CandidateSite[] = [
  { siteId: 3, upToMs: 3, costMs: 0.05, priorExitFraction: 0.4, priorThreshold: 0.9 },
  { siteId: 6, upToMs: 6, costMs: 0.2, priorExitFraction: 0.1, priorThreshold: 0.95 },
  { siteId: 8, upToMs: 8, costMs: 0.05, priorExitFraction: 0.8, priorThreshold: 0.9 },
  { siteId: 1, upToMs: 1, costMs: 0.05, priorExitFraction: 0.01, priorThreshold: 0.99 },
];

describe('ramp adjustment', () => {
  it("measures each ramp's marginal saving on the window", () => {
    const [u3, u6] = rampUtilities(samples, [useful, useless], [0.9, 0.9], WHOLE_MS);
    expect(u3).toBeGreaterThan(3); // half the requests answer 7 ms earlier
    expect(u6).toBeCloseTo(-0.2 * 0.5, 6); // costs 0.2 ms for the half that pass it, saves nothing
  });

  it('deactivates a ramp whose utility is negative', () => {
    const decision = adjustRamps(samples, [useful, useless], [0.9, 0.9], candidates, WHOLE_MS, { maxRamps: 3, overheadBudget: 0.05 });
    expect(decision).toMatchObject({ action: 'deactivate', siteId: 6 });
    expect(decision.action === 'deactivate' && decision.reason).toMatch(/negative utility/);
  });

  it('enforces the overhead budget at run time', () => {
    const costly = { ...useful, costMs: 0.8 }; // 8 % of a 10 ms model
    const decision = adjustRamps(
      samples.map((s) => ({ ...s, confidences: [s.confidences[0]!], predictions: [1] })),
      [costly],
      [0.9],
      candidates,
      WHOLE_MS,
      { maxRamps: 3, overheadBudget: 0.05 },
    );
    expect(decision).toMatchObject({ action: 'deactivate', siteId: 3 });
    expect(decision.action === 'deactivate' && decision.reason).toMatch(/exceeds 5.0 %/);
  });

  it('activates the best inactive site by its prior in the cascade when a slot and budget are free, skipping excluded ones', () => {
    const window = samples.map((s) => ({ ...s, confidences: [s.confidences[0]!], predictions: [1] }));
    const decision = adjustRamps(window, [useful], [0.9], candidates, WHOLE_MS, { maxRamps: 3, overheadBudget: 0.05 });
    // ramp 3 answers half; site 8's 80 % adds the 30 % between, each 2 ms earlier than the end
    expect(decision).toMatchObject({ action: 'activate', siteId: 8, threshold: 0.9 });
    expect(decision.action === 'activate' && decision.reason).toMatch(/prior marginal utility 0\.5750 ms/);
    // Alone, site 6 would save 0.1 × 4 ms − 0.2 ms; behind ramp 3, its 10 % are already answered,
    // and site 1's 1 % would answer 2 ms sooner than at ramp 3 for a head every request pays.
    const next = adjustRamps(window, [useful], [0.9], candidates, WHOLE_MS, { maxRamps: 3, overheadBudget: 0.05 }, new Set([8]));
    expect(next).toMatchObject({ action: 'keep' });
  });

  it('prices a candidate by the exits the ramps before it leave and the time to where they answer today', () => {
    const site = (siteId: number, upToMs: number, priorExitFraction: number): CandidateSite => ({
      siteId,
      upToMs,
      costMs: 0.1,
      priorExitFraction,
      priorThreshold: 0.9,
    });
    const active = [
      { siteId: 2, upToMs: 2, costMs: 0.1 },
      { siteId: 6, upToMs: 6, costMs: 0.1 },
    ];
    const shares = [0.3, 0.7]; // 30 % answered at site 2, 40 % more at site 6
    // site 4, 60 %: the 30 % after site 2's answer 2 ms sooner (at 4, not 6); every 70 % passing pays the head
    expect(marginalPriorUtilityMs(site(4, 4, 0.6), active, shares, WHOLE_MS)).toBeCloseTo(0.3 * 2 - 0.1 * 0.7, 9);
    // site 4, 90 %: also the 20 % that answer at the end today, 6 ms sooner
    expect(marginalPriorUtilityMs(site(4, 4, 0.9), active, shares, WHOLE_MS)).toBeCloseTo(0.4 * 2 + 0.2 * 6 - 0.07, 9);
    // site 1 before every ramp: its 20 % answer 1 ms sooner than at site 2; everybody pays
    expect(marginalPriorUtilityMs(site(1, 1, 0.2), active, shares, WHOLE_MS)).toBeCloseTo(0.2 * 1 - 0.1, 9);
    // site 8 after the last: only the share beyond 70 %
    expect(marginalPriorUtilityMs(site(8, 8, 0.5), active, shares, WHOLE_MS)).toBeCloseTo(-0.1 * 0.3, 9);
    expect(cumulativeExitShares(samples, [0.9, 0.9])).toEqual([0.5, 0.5]);
  });

  it('makes no change that gains less than the switching margin', () => {
    // ramp 6 costs 0.2 ms for the half that pass it: dropped at a 0.05 ms margin, kept at 0.2 ms
    const dropAt = (minGainMsPerRequest: number) =>
      adjustRamps(samples, [useful, useless], [0.9, 0.9], candidates.slice(0, 2), WHOLE_MS, { maxRamps: 2, overheadBudget: 0.05, minGainMsPerRequest });
    expect(dropAt(0.05)).toMatchObject({ action: 'deactivate', siteId: 6 });
    expect(dropAt(0.2)).toMatchObject({ action: 'keep' });
    // and site 8's 0.575 ms is added at a 0.5 ms margin, not at 0.6 ms
    const window = samples.map((s) => ({ ...s, confidences: [s.confidences[0]!], predictions: [1] }));
    const addAt = (minGainMsPerRequest: number) =>
      adjustRamps(window, [useful], [0.9], candidates, WHOLE_MS, { maxRamps: 3, overheadBudget: 0.05, minGainMsPerRequest });
    expect(addAt(0.5)).toMatchObject({ action: 'activate', siteId: 8 });
    expect(addAt(0.6)).toMatchObject({ action: 'keep' });
  });

  it('keeps the set at the ramp budget', () => {
    const window = samples.map((s) => ({ ...s, confidences: [s.confidences[0]!], predictions: [1] }));
    expect(adjustRamps(window, [useful], [0.9], candidates, WHOLE_MS, { maxRamps: 1, overheadBudget: 0.05 })).toMatchObject({ action: 'keep' });
  });
});

describe('ExitMonitor ramp adjustment', () => {
  it('drops a useless ramp after a period, keeping what the window saw of the others', () => {
    const monitor = new ExitMonitor(
      'm',
      [useful, useless],
      [0.9, 0.9],
      WHOLE_MS,
      { adjustEvery: 320, minSamples: 300, retuneEvery: 100_000 },
      candidates.slice(0, 2),
    );
    // Ramp 6 always disagrees with the model, and ramp 3 only agrees where it is confident: no
    // threshold lets ramp 6 answer within the budget, so it only costs.
    const feedback = {
      siteIds: [3, 6],
      confidences: [samples.slice(0, 16).map((s) => s.confidences[0]!), samples.slice(0, 16).map((s) => s.confidences[1]!)],
      predictions: [Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? 1 : 2)), Array(16).fill(2)],
      finalPredictions: Array(16).fill(1),
    };
    const plan = {
      mode: 'release' as const,
      ramps: [
        { siteId: 3, threshold: 0.9 },
        { siteId: 6, threshold: 0.9 },
      ],
      keepRows: [],
    };
    let change;
    for (let i = 0; i < 30 && !change; i++) {
      monitor.observe(plan, feedback);
      change = monitor.maybeAdjust();
    }
    expect(change).toMatchObject({ before: [3, 6], after: [3] });
    expect(monitor.activeSiteIds).toEqual([3]);
    expect(monitor.stats().recentChanges.at(-1)).toMatchObject({ kind: 'ramps', reason: change!.reason, before: [3, 6], after: [3] });
    const kept = monitor.stats().numSamples;
    expect(kept).toBeGreaterThanOrEqual(320);
    // the window's samples now hold ramp 3's column only, so the tuner can go on with them
    const retune = monitor.retune('periodic');
    expect(retune?.numSamples ?? kept).toBe(kept);
    expect(monitor.currentThresholds).toHaveLength(1);
    expect(monitor.currentThresholds[0]!).toBeLessThanOrEqual(0.99);
  });

  it.each(['release', 'compact'] as const)('starts a ramp it adds disabled until the tuner has seen it answer (%s mode)', (mode) => {
    const monitor = new ExitMonitor('m', [useful], [0.9], WHOLE_MS, { adjustEvery: 320, minSamples: 300, maxRamps: 2, retuneEvery: 100_000 }, [
      candidates[0]!,
      candidates[2]!,
    ]);
    const rows = 16;
    const feedback = {
      siteIds: [3],
      confidences: [samples.slice(0, rows).map((s) => s.confidences[0]!)],
      predictions: [samples.slice(0, rows).map((s) => (s.confidences[0]! >= 0.9 ? 1 : 2))], // unconfident rows guess wrong
      finalPredictions: Array(rows).fill(1),
      ...(mode === 'compact' ? { answeredBy: samples.slice(0, rows).map((s) => (s.confidences[0]! >= 0.9 ? 0 : -1)) } : {}),
    };
    const plan = {
      mode,
      ramps: [{ siteId: 3, threshold: 0.9 }],
      keepRows: mode === 'compact' ? Array.from({ length: rows }, (_, i) => i) : [],
      monitorFraction: 1,
    };
    let change;
    for (let i = 0; i < 40 && !change; i++) {
      monitor.observe(plan, feedback);
      change = monitor.maybeAdjust();
    }
    expect(change).toMatchObject({ before: [3], after: [3, 8] });
    expect(change!.reason).toMatch(/free ramp slot/);
    expect(monitor.currentThresholds).toEqual([0.9, DISABLED_THRESHOLD]); // not site 8's validation 0.9
  });

  it("keeps the other ramps' thresholds through an addition, and enables the new ramp on the samples that saw it", () => {
    // Ramp 3 answers the half that is confident there; site 8, once active, is confident (and
    // right) for 80 %. The window keeps its evidence for ramp 3 through the change.
    const monitor = new ExitMonitor('m', [useful], [0.99], WHOLE_MS, { adjustEvery: 320, minSamples: 300, maxRamps: 2, retuneEvery: 128, windowSize: 2048 }, [
      candidates[0]!,
      candidates[2]!,
    ]);
    const rows = 16;
    const conf3 = Array.from({ length: rows }, (_, i) => (i % 2 === 0 ? 0.99 : 0.4));
    const guess3 = conf3.map((c) => (c >= 0.9 ? 1 : 2));
    const conf8 = Array.from({ length: rows }, (_, i) => (i < 13 ? 0.97 : 0.3));
    const guess8 = conf8.map((c) => (c >= 0.9 ? 1 : 2));
    const serve = (active: number[], thresholds: number[]) =>
      monitor.observe(
        { mode: 'release', ramps: active.map((siteId, k) => ({ siteId, threshold: thresholds[k]! })), keepRows: [] },
        {
          siteIds: active,
          confidences: active.map((site) => (site === 3 ? conf3 : conf8)),
          predictions: active.map((site) => (site === 3 ? guess3 : guess8)),
          finalPredictions: Array(rows).fill(1),
        },
      );
    let change;
    for (let i = 0; i < 40 && !change; i++) {
      serve(monitor.activeSiteIds, monitor.currentThresholds);
      change = monitor.maybeAdjust();
    }
    expect(change).toMatchObject({ before: [3], after: [3, 8] });
    const before = monitor.numSamples;
    expect(monitor.currentThresholds).toEqual([0.99, DISABLED_THRESHOLD]);
    // Re-tuned on the mixed window, ramp 3 keeps answering and site 8 stays off: the samples from
    // before it cannot say how often it would disagree.
    for (let served = 0; served < 288; served += rows) {
      serve(monitor.activeSiteIds, monitor.currentThresholds);
      expect(monitor.currentThresholds[0]!).toBeLessThanOrEqual(0.99);
      expect(monitor.currentThresholds[1]!).toBe(DISABLED_THRESHOLD);
    }
    expect(monitor.numSamples).toBe(before + 288);
    // Once 300 samples saw site 8, it is tuned on them and answers.
    for (let served = 0; served < 256; served += rows) serve(monitor.activeSiteIds, monitor.currentThresholds);
    expect(monitor.currentThresholds[0]!).toBeLessThanOrEqual(0.99);
    expect(monitor.currentThresholds[1]!).toBeLessThanOrEqual(0.97);
    expect(monitor.exitRates()[1]!).toBeGreaterThan(0);
  });

  it('keeps a ramp that could answer within the budget even while the bound keeps it off', () => {
    // 40 agreeing confident samples per period: too few for the 95 % bound to switch ramp 6 on,
    // but the point estimate shows it would save time, so it is not judged useless.
    const rampOnly = [useless];
    const monitor = new ExitMonitor('m', rampOnly, [1.0001], WHOLE_MS, { adjustEvery: 320, minSamples: 300, windowSize: 512 }, candidates.slice(1, 2));
    const rows = 16;
    const feedback = {
      siteIds: [6],
      confidences: [Array.from({ length: rows }, (_, i) => (i < 2 ? 0.99 : 0.3))],
      predictions: [Array(rows).fill(1)],
      finalPredictions: Array(rows).fill(1),
    };
    const plan = { mode: 'release' as const, ramps: [{ siteId: 6, threshold: 1.0001 }], keepRows: [] };
    for (let i = 0; i < 40; i++) {
      monitor.observe(plan, feedback);
      expect(monitor.maybeAdjust()).toBeUndefined();
    }
    expect(monitor.activeSiteIds).toEqual([6]);
  });
});

describe('ExitMonitor ramp adjustment under drift (monitor, tuner and adjuster together)', () => {
  // Three candidate sites of a 10 ms model. Before the drift 40 / 60 / 80 % of inputs are
  // confident (and right) by sites 2 / 5 / 8; after it, inputs got harder: nobody is by site 2,
  // 50 / 75 % by sites 5 / 8. Confident rows score 0.99 (a saturated softmax puts them at one
  // value), the rest 0.2-0.6 and guess wrong; 0.4 % of confident ones are wrong too.
  const sites = [
    { siteId: 2, upToMs: 2, costMs: 0.05, priorExitFraction: 0.4, priorThreshold: 0.9 },
    { siteId: 5, upToMs: 5, costMs: 0.05, priorExitFraction: 0.6, priorThreshold: 0.9 },
    { siteId: 8, upToMs: 8, costMs: 0.05, priorExitFraction: 0.8, priorThreshold: 0.9 },
  ];
  const BEFORE: Record<number, number> = { 2: 0.4, 5: 0.6, 8: 0.8 };
  const AFTER: Record<number, number> = { 2: 0, 5: 0.5, 8: 0.75 };
  const ADJUST_EVERY = 512;

  function serve(driftAtSample: number, numSamples: number) {
    const monitor = new ExitMonitor('m', [sites[0]!, sites[2]!], [0.9, 0.9], WHOLE_MS, { adjustEvery: ADJUST_EVERY, maxRamps: 2 }, sites);
    let seed = 12345;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const changes: { atSample: number; after: number[] }[] = [];
    const windows: number[] = []; // agreement of the answers given, per 512 requests
    const retunes: string[] = [];
    let agree = 0;
    let answered = 0;
    for (let served = 0; served < numSamples; served += 16) {
      const active = monitor.activeSiteIds;
      const thresholds = monitor.currentThresholds;
      const confidences = active.map(() => [] as number[]);
      const predictions = active.map(() => [] as number[]);
      for (let row = 0; row < 16; row++) {
        const shares = served + row < driftAtSample ? BEFORE : AFTER;
        const u = random();
        const noise = random();
        const wrongAnyway = random() < 0.004;
        active.forEach((site, k) => {
          const confident = u < shares[site]!;
          confidences[k]!.push(confident ? 0.99 : 0.2 + 0.4 * noise);
          predictions[k]!.push(confident && !wrongAnyway ? 1 : 2);
        });
        // The answer this row got: its first ramp over threshold, else the full model's (class 1).
        const at = active.findIndex((_, k) => confidences[k]![row]! >= thresholds[k]!);
        agree += at < 0 || predictions[at]![row] === 1 ? 1 : 0;
        if (++answered % 512 === 0) {
          windows.push(agree / 512);
          agree = 0;
        }
      }
      // compact mode labelling every row: the same evidence as release, and drift detection on
      const everyRow = Array.from({ length: 16 }, (_, row) => row);
      const plan = {
        mode: 'compact' as const,
        ramps: active.map((siteId, k) => ({ siteId, threshold: thresholds[k]! })),
        keepRows: everyRow,
        monitorFraction: 1,
      };
      const retune = monitor.observe(plan, { siteIds: active, confidences, predictions, finalPredictions: Array(16).fill(1) });
      if (retune) retunes.push(retune.reason);
      const change = monitor.maybeAdjust();
      if (change) changes.push({ atSample: served + 16, after: change.after });
    }
    return { monitor, changes, windows, retunes };
  }

  it('moves to the best ramp set within four adjust periods of the drift, keeping the budget, and holds still otherwise', () => {
    const driftAt = 8_000;
    const { monitor, changes, windows } = serve(driftAt, 24_000);
    // Before the drift the package's set is best: no change for 15 periods.
    expect(changes.filter((c) => c.atSample <= driftAt)).toEqual([]);
    // After it, ramp 2 answers nobody and only costs: dropped, then the slot goes to site 5.
    expect(changes.map((c) => c.after)).toEqual([[8], [5, 8]]);
    expect(changes.at(-1)!.atSample - driftAt).toBeLessThanOrEqual(4 * ADJUST_EVERY);
    expect(monitor.activeSiteIds).toEqual([5, 8]);
    // Every 512 answers stayed within the 1 % budget, through both changes.
    expect(Math.min(...windows)).toBeGreaterThanOrEqual(0.99);
    // and the ramps did answer: the budget was not kept by answering nobody early
    expect(monitor.exitRates().reduce((a, b) => a + b, 0)).toBeGreaterThan(0.6);
  });

  it('holds the set on a stationary stream', () => {
    // (Before the tuner kept the top confidence among its candidates, this stream made the set
    // change 22 times: the confident rows' point mass was never a threshold of its own.)
    const { changes, retunes } = serve(Number.POSITIVE_INFINITY, 24_000);
    expect(changes).toEqual([]);
    // and its answers, which disagree 0.4 % of the time, never look like a drift
    expect(retunes.filter((reason) => reason === 'drift')).toEqual([]);
    expect(retunes.length).toBeGreaterThan(0);
  });
});
