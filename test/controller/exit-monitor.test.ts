import { describe, expect, it } from 'vitest';
import { ExitMonitor, type SearchRequest } from '../../controller/exit-monitor.js';
import { tuneThresholds } from '../../shared/threshold-tuner.js';
import { seededRandom } from '../../prepare/ramp-trainer.js';
import type { EarlyExitPlan, ExitFeedback } from '../../shared/protocol.js';

const RAMPS = [
  { siteId: 4, upToMs: 2, costMs: 0.05 },
  { siteId: 7, upToMs: 5, costMs: 0.05 },
];

/** One batch of feedback: confident rows agree with the full model unless `wrongWhenConfident`. */
function batch(random: () => number, numRows: number, wrongWhenConfident: number): ExitFeedback {
  const finals = Array.from({ length: numRows }, () => Math.floor(random() * 10));
  const confidences = RAMPS.map(() => finals.map(() => 0.3 + 0.7 * random()));
  const predictions = confidences.map((cs) =>
    cs.map((c, row) =>
      c > 0.9 && random() < wrongWhenConfident ? (finals[row]! + 1) % 10 : c > 0.9 ? finals[row]! : random() < 0.5 ? finals[row]! : (finals[row]! + 2) % 10,
    ),
  );
  return { siteIds: RAMPS.map((r) => r.siteId), confidences, predictions, finalPredictions: finals };
}

const plan = (thresholds: number[], mode: EarlyExitPlan['mode'] = 'release'): EarlyExitPlan => ({
  mode,
  ramps: RAMPS.map((r, i) => ({ siteId: r.siteId, threshold: thresholds[i]! })),
  keepRows: [],
});

describe('ExitMonitor', () => {
  it('keeps the package thresholds until the window can bound the risk, then re-tunes periodically', () => {
    const monitor = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { retuneEvery: 128, minSamples: 300 });
    const random = seededRandom(1);
    const changes = [];
    for (let i = 0; i < 40; i++) {
      const change = monitor.observe(plan(monitor.currentThresholds), batch(random, 16, 0));
      if (change) changes.push(change);
      if (i < 18) expect(change).toBeUndefined(); // fewer than 300 samples so far
    }
    expect(changes.length).toBeGreaterThan(0);
    expect(changes[0]!.reason).toBe('periodic');
    const stats = monitor.stats();
    // status lists every change with its reason (the latest 32)
    expect(stats.recentChanges.map((c) => [c.kind, c.reason, c.after])).toEqual(changes.slice(-32).map((c) => ['thresholds', c.reason, c.after]));
    expect(stats.numRetunes).toBeGreaterThanOrEqual(2);
    expect(stats.windowAgreement).toBeGreaterThanOrEqual(0.99);
    expect(stats.exitsPerRamp[0]! + stats.exitsPerRamp[1]!).toBeGreaterThan(0);
  });

  it('spends only its share of the budget when told to (budgetShare), and the whole budget by default', () => {
    const tuned = (budgetShare?: number) => {
      const monitor = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, {
        retuneEvery: 128,
        minSamples: 300,
        windowSize: 2048,
        ...(budgetShare ? { budgetShare } : {}),
      });
      const random = seededRandom(9);
      let last;
      for (let i = 0; i < 128; i++) last = monitor.observe(plan(monitor.currentThresholds), batch(random, 16, 0.01)) ?? last;
      return { bound: last!.disagreementUpperBound, exits: monitor.exitRates().reduce((a, b) => a + b, 0) };
    };
    const whole = tuned();
    const half = tuned(0.5);
    expect(whole.bound).toBeGreaterThan(0.005);
    expect(whole.bound).toBeLessThanOrEqual(0.01);
    expect(half.bound).toBeLessThanOrEqual(0.005);
    expect(half.exits).toBeLessThan(whole.exits);
  });

  it('re-tunes at once when recent answers violate the budget, and answers fewer early', () => {
    // drift detection off: the window-wide rule alone (a stream this bad from the start trips both)
    const monitor = new ExitMonitor('m', RAMPS, [0.9, 0.9], 10, { retuneEvery: 10_000, minSamples: 300, driftSegment: 100_000 });
    const random = seededRandom(2);
    let change;
    for (let i = 0; i < 40 && !change; i++) change = monitor.observe(plan(monitor.currentThresholds), batch(random, 16, 0.2));
    expect(change?.reason).toBe('violation');
    expect(Math.min(...change!.after)).toBeGreaterThan(0.9);
  });

  it('cuts its window to the recent answers when they break the budget beyond doubt, long before the window-wide agreement does', () => {
    const monitor = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { windowSize: 4096 });
    const random = seededRandom(5);
    const changes: { reason: string; before: number[]; after: number[] }[] = [];
    const everyRow = Array.from({ length: 16 }, (_, row) => row);
    const observe = (wrong: number) => {
      // compact mode labelling every row (drift detection watches compact mode)
      const change = monitor.observe({ ...plan(monitor.currentThresholds, 'compact'), keepRows: everyRow, monitorFraction: 1 }, batch(random, 16, wrong));
      if (change) changes.push(change);
    };
    // 4,000 requests that agree (stationary): no drift is declared
    for (let i = 0; i < 250; i++) observe(0);
    expect(changes.filter((c) => c.reason === 'drift')).toEqual([]);
    const exitingBefore = monitor.exitRates().reduce((a, b) => a + b, 0);
    expect(exitingBefore).toBeGreaterThan(0.2);
    // then a shift: a fifth of the confident answers disagree
    let batches = 0;
    while (!changes.some((c) => c.reason === 'drift') && batches < 60) {
      observe(0.2);
      batches++;
    }
    const drift = changes.find((c) => c.reason === 'drift')!;
    expect(drift).toBeDefined();
    expect(batches * 16).toBeLessThanOrEqual(256); // within one drift segment of the shift
    expect(monitor.windowAgreement()).toBeGreaterThanOrEqual(0.99); // the window-wide rule had not seen it yet
    expect(monitor.numSamples).toBe(256);
    // judged on the recent samples alone (too few to certify much): far fewer answers early until the evidence is back
    expect(monitor.exitRates().reduce((a, b) => a + b, 0)).toBeLessThan(exitingBefore / 3);
    expect(drift.after.every((t, i) => t > drift.before[i]!)).toBe(true);
  });

  it('suspects a drift when fewer rows exit than its window predicts, labels every exit, and re-tunes on what follows', () => {
    const monitor = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10);
    const random = seededRandom(6);
    /**
     * A compact batch with confidences squeezed into [0.3, top] (a shift makes the ramps less
     * sure): every row labelled (a cold start, a suspected drift) or, as compact mode keeps them,
     * the rows that did not exit and one exit in ten (each standing for ten).
     */
    let served = 0;
    const serve = (top: number) => {
      const b = batch(random, 16, 0);
      b.confidences = b.confidences.map((cs) => cs.map((c) => 0.3 + (c - 0.3) * ((top - 0.3) / 0.7)));
      const thresholds = monitor.currentThresholds;
      const all = monitor.suspectsDrift || monitor.numSamples < 512;
      const keepRows = b.finalPredictions.flatMap((_, row) => (all || (served + row) % 10 === 0 ? [row] : []));
      const exited = (row: number) => b.confidences.some((cs, r) => cs[row]! >= thresholds[r]!);
      const finalPredictions = b.finalPredictions.map((f, row) => (exited(row) && !keepRows.includes(row) ? -1 : f));
      served += 16;
      const change = monitor.observe({ ...plan(thresholds, 'compact'), keepRows }, { ...b, finalPredictions });
      return change?.reason;
    };
    let suspectedAt = -1;
    for (let row = 0; row < 20_000; row += 16) {
      serve(1);
      if (monitor.suspectsDrift && suspectedAt < 0) suspectedAt = row;
    }
    expect(suspectedAt).toBe(-1); // 20,000 rows like the window's, through every periodic re-tune: never
    for (let row = 0; row < 2_000 && suspectedAt < 0; row += 16) {
      serve(0.95);
      if (monitor.suspectsDrift) suspectedAt = row;
    }
    expect(suspectedAt).toBeGreaterThanOrEqual(0);
    expect(suspectedAt).toBeLessThan(500);
    // every exit is labelled now; once 256 samples came after the change, they alone are kept (and
    // tuned on: here they agree, so no threshold needs to rise)
    let smallest = monitor.numSamples;
    for (let row = 0; row < 1_000; row += 16) {
      serve(0.95);
      smallest = Math.min(smallest, monitor.numSamples);
    }
    expect(smallest).toBeLessThanOrEqual(256 + 16);
    // The window describes the new inputs: the share it predicts under the thresholds in force is
    // the share fresh inputs like them exit at.
    const probe = seededRandom(99);
    const thresholds = monitor.currentThresholds;
    let exits = 0;
    for (let k = 0; k < 400; k++) {
      const b = batch(probe, 16, 0);
      for (let row = 0; row < 16; row++) if (b.confidences.some((cs, r) => 0.3 + (cs[row]! - 0.3) * (0.65 / 0.7) >= thresholds[r]!)) exits++;
    }
    const predicted = monitor.exitRates().reduce((a, b) => a + b, 0);
    expect(Math.abs(predicted - exits / 6400)).toBeLessThan(0.04); // ~0.12 apart with the old inputs in the window
  });

  it("with static tuning, observes the same violation and keeps the package's thresholds and ramps", () => {
    const monitor = new ExitMonitor('m', RAMPS, [0.9, 0.9], 10, { retuneEvery: 10, minSamples: 300, adjustEvery: 10, tuning: 'static' });
    const random = seededRandom(2);
    for (let i = 0; i < 60; i++) expect(monitor.observe(plan(monitor.currentThresholds), batch(random, 16, 0.2))).toBeUndefined();
    expect(monitor.maybeAdjust()).toBeUndefined();
    expect(monitor.currentThresholds).toEqual([0.9, 0.9]);
    expect(monitor.numSamples).toBeGreaterThan(300); // it still counts what it saw (status, exit rates)
  });

  it("holds fixed thresholds from then on, keeping its window, and never re-tunes them (the oracle's schedule)", () => {
    const monitor = new ExitMonitor('m', RAMPS, [0.9, 0.9], 10, { retuneEvery: 10, minSamples: 100 });
    const random = seededRandom(3);
    for (let i = 0; i < 10; i++) monitor.observe(plan(monitor.currentThresholds), batch(random, 16, 0));
    const seen = monitor.numSamples;
    const change = monitor.fix([0.99, 1.0001]);
    expect(change).toMatchObject({ model: 'm', reason: 'fixed', after: [0.99, 1.0001] });
    expect(monitor.numSamples).toBe(seen);
    // exit rates follow the fixed thresholds: the second ramp is off
    expect(monitor.exitRates()[1]).toBe(0);
    for (let i = 0; i < 40; i++) expect(monitor.observe(plan(monitor.currentThresholds), batch(random, 16, 0.3))).toBeUndefined();
    expect(monitor.currentThresholds).toEqual([0.99, 1.0001]);
    expect(() => monitor.fix([0.5])).toThrow(/2 active ramps, not 1/);
    expect(monitor.stats().recentChanges.at(-1)).toMatchObject({ kind: 'thresholds', reason: 'fixed', after: [0.99, 1.0001] });
  });

  it("counts the window's exits as Kish's effective observations: a weighted exit is one", () => {
    const monitor = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { minSamples: 10_000 });
    // 4 rows, all exiting at the first ramp and agreeing
    const rows = (value: number) => new Array<number>(4).fill(value);
    const feedback: ExitFeedback = {
      siteIds: RAMPS.map((r) => r.siteId),
      confidences: [rows(0.99), rows(0.5)],
      predictions: [rows(1), rows(1)],
      finalPredictions: rows(1),
    };
    for (let i = 0; i < 5; i++) monitor.observe({ ...plan([0.95, 0.95], 'compact'), keepRows: [0, 1, 2, 3], monitorFraction: 1 }, feedback);
    expect(monitor.effectiveExitSamples).toBeCloseTo(20); // 20 exits of weight 1
    const sampled = { ...feedback, finalPredictions: [1, -1, -1, -1] };
    for (let i = 0; i < 5; i++) monitor.observe({ ...plan([0.95, 0.95], 'compact'), keepRows: [0], monitorFraction: 0.1 }, sampled);
    expect(monitor.effectiveExitSamples).toBeCloseTo((20 + 50) ** 2 / (20 + 500)); // and 5 of weight 10: ~9.4, not 70
  });

  it('keeps windowSize samples of weight 1, twice as many at half the budget, and more once samples are weighted', () => {
    const fill = (budgetShare: number, keepEvery: number) => {
      const monitor = new ExitMonitor('m', RAMPS, [0.9, 0.9], 10, { windowSize: 64, minSamples: 10_000, budgetShare });
      const random = seededRandom(8);
      let served = 0;
      for (let i = 0; i < 80; i++) {
        const b = batch(random, 16, 0);
        const exited = (row: number) => b.confidences.some((cs) => cs[row]! >= 0.9);
        const keepRows = b.finalPredictions.flatMap((_, row) => ((served + row) % keepEvery === 0 ? [row] : []));
        const finalPredictions = b.finalPredictions.map((f, row) => (exited(row) && !keepRows.includes(row) ? -1 : f));
        served += 16;
        monitor.observe({ ...plan([0.9, 0.9], 'compact'), keepRows, monitorFraction: 1 / keepEvery }, { ...b, finalPredictions });
      }
      return monitor.numSamples;
    };
    expect(fill(1, 1)).toBe(64); // every exit labelled: each sample is one request
    expect(fill(0.5, 1)).toBe(128); // half the budget needs twice the evidence
    expect(fill(1, 10)).toBeGreaterThan(64); // a tenth labelled: the window spans up to 640 requests
  });

  it('weighs a compact exit as itself when the batch kept every row (full monitoring at a cold start)', () => {
    // row 0 exits at the first ramp with a wrong answer; rows 1-3 run on and agree
    const feedback: ExitFeedback = {
      siteIds: RAMPS.map((r) => r.siteId),
      confidences: [
        [0.99, 0.5, 0.5, 0.5],
        [0.99, 0.5, 0.5, 0.5],
      ],
      predictions: [
        [7, 1, 2, 3],
        [7, 1, 2, 3],
      ],
      finalPredictions: [0, 1, 2, 3],
    };
    const full = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { minSamples: 10_000 });
    full.observe({ ...plan([0.95, 0.95], 'compact'), keepRows: [0, 1, 2, 3] }, feedback);
    expect(full.windowAgreement()).toBeCloseTo(3 / 4);
    const sampled = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { minSamples: 10_000 });
    sampled.observe({ ...plan([0.95, 0.95], 'compact'), keepRows: [0] }, feedback);
    expect(sampled.windowAgreement()).toBeCloseTo(3 / 13); // the monitored exit stands for 10
  });

  it('weights the monitored sample of exited rows in compact mode', () => {
    const monitor = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { minSamples: 10_000 });
    const random = seededRandom(3);
    const feedback = batch(random, 16, 0);
    // compact: rows that exited and were not monitored have no final prediction
    feedback.finalPredictions = feedback.finalPredictions.map((p, row) => (feedback.confidences[0]![row]! >= 0.95 && row % 2 === 1 ? -1 : p));
    monitor.observe(plan([0.95, 0.95], 'compact'), feedback);
    const stats = monitor.stats();
    expect(stats.exitsPerRamp[0]! + stats.exitsPerRamp[1]! + stats.fullAnswers).toBe(16); // every answer counted
    expect(stats.numSamples).toBeLessThanOrEqual(16);
  });

  it('weighs a kept exit for the exits that left, also when every row that reported was kept', () => {
    const monitor = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { minSamples: 10_000 });
    const confident = {
      siteIds: [4, 7],
      predictions: [
        [1, 1],
        [1, 1],
      ],
      finalPredictions: [1, 1],
    };
    // a batch of two rows that both exited at the first ramp: row 0 kept for monitoring, row 1 left
    monitor.observe(
      { ...plan([0.95, 0.95], 'compact'), keepRows: [0] },
      {
        ...confident,
        confidences: [
          [0.99, 0.99],
          [0.5, Number.NaN],
        ],
        finalPredictions: [1, -1],
      },
    );
    // a batch of one row that ran to the end without exiting
    monitor.observe(
      { ...plan([0.95, 0.95], 'compact'), keepRows: [] },
      { siteIds: [4, 7], confidences: [[0.2], [0.3]], predictions: [[1], [1]], finalPredictions: [1] },
    );
    // the kept exit stands for 10 requests (it once counted as 1: the batch's only reported row was kept)
    expect(monitor.exitRates()[0]).toBeCloseTo(10 / 11);
  });

  describe('with deferred searches (the controller serves on while a thread searches)', () => {
    const runJobs = (request: SearchRequest) => request.jobs.map((j) => tuneThresholds(j.samples, j.ramps, j.wholeMs, j.overrides));

    it('asks for the search it would have run, and applies its results as the in-process monitor does', () => {
      const options = { retuneEvery: 128, minSamples: 300 };
      const inline = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, options);
      const deferred = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { ...options, deferSearch: true });
      const [a, b] = [seededRandom(3), seededRandom(3)];
      const inlineChanges = [];
      const deferredChanges = [];
      let requests = 0;
      for (let i = 0; i < 60; i++) {
        const c1 = inline.observe(plan(inline.currentThresholds), batch(a, 16, 0.005));
        if (c1) inlineChanges.push(c1);
        expect(deferred.observe(plan(deferred.currentThresholds), batch(b, 16, 0.005))).toBeUndefined();
        const request = deferred.takeSearchRequest();
        if (request) {
          requests++;
          expect(deferred.takeSearchRequest()).toBeUndefined(); // asked once
          const { thresholds } = deferred.completeSearch(request.id, runJobs(request));
          if (thresholds) deferredChanges.push(thresholds);
        }
        expect(deferred.currentThresholds).toEqual(inline.currentThresholds);
      }
      expect(requests).toBeGreaterThanOrEqual(2);
      expect(deferredChanges.length).toBeGreaterThan(0);
      expect(deferredChanges).toEqual(inlineChanges);
    });

    it('serves on while its search is out, asks for no other, then re-tunes once more for what fell due meanwhile', () => {
      const monitor = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { retuneEvery: 64, minSamples: 300, deferSearch: true });
      const random = seededRandom(4);
      let request: SearchRequest | undefined;
      for (let i = 0; i < 40 && !request; i++) {
        monitor.observe(plan(monitor.currentThresholds), batch(random, 16, 0));
        request = monitor.takeSearchRequest();
      }
      expect(request).toBeDefined();
      expect(monitor.searching).toBe(true);
      const before = monitor.currentThresholds;
      // 160 more samples, over two re-tune periods: the thresholds stay, no second search is asked for
      for (let i = 0; i < 10; i++) {
        monitor.observe(plan(monitor.currentThresholds), batch(random, 16, 0));
        expect(monitor.takeSearchRequest()).toBeUndefined();
      }
      expect(monitor.currentThresholds).toEqual(before);
      const outcome = monitor.completeSearch(request!.id, runJobs(request!));
      expect(outcome.thresholds?.reason).toBe('periodic');
      expect(monitor.currentThresholds).toEqual(outcome.thresholds!.after);
      // the re-tune that fell due while it was out is asked for now, over the window as it is now
      const next = monitor.takeSearchRequest();
      expect(next).toBeDefined();
      expect(next!.jobs[0]!.samples.length).toBe(monitor.numSamples);
      expect(next!.jobs[0]!.samples.length).toBeGreaterThan(request!.jobs[0]!.samples.length);
      // a stale or foreign id changes nothing
      expect(monitor.completeSearch(request!.id, runJobs(request!))).toEqual({});
      expect(monitor.searching).toBe(true);
    });

    it('drops a result computed on a window cut since (a drift), and re-tunes on the cut window instead', () => {
      const monitor = new ExitMonitor('m', RAMPS, [0.95, 0.95], 10, { windowSize: 4096, deferSearch: true });
      const random = seededRandom(5);
      const everyRow = Array.from({ length: 16 }, (_, row) => row);
      const observe = (wrong: number) =>
        monitor.observe({ ...plan(monitor.currentThresholds, 'compact'), keepRows: everyRow, monitorFraction: 1 }, batch(random, 16, wrong));
      let held: SearchRequest | undefined;
      for (let i = 0; i < 250; i++) {
        observe(0);
        const request = monitor.takeSearchRequest();
        if (request) {
          // answer every search but the last one asked for before the shift
          if (held) monitor.completeSearch(held.id, runJobs(held));
          held = request;
        }
      }
      expect(held).toBeDefined();
      const thresholdsBefore = monitor.currentThresholds;
      // the shift: the window is cut to the recent samples (a drift) while `held` is still out
      for (let i = 0; i < 60 && monitor.numSamples > 256; i++) observe(0.2);
      expect(monitor.numSamples).toBeLessThanOrEqual(256 + 16);
      expect(monitor.completeSearch(held!.id, runJobs(held!))).toEqual({}); // stale: not applied
      expect(monitor.currentThresholds).toEqual(thresholdsBefore);
      const drift = monitor.takeSearchRequest();
      expect(drift).toBeDefined();
      expect(drift!.jobs[0]!.samples.length).toBe(monitor.numSamples);
      const { thresholds } = monitor.completeSearch(drift!.id, runJobs(drift!));
      expect(thresholds?.reason).toBe('drift');
      expect(thresholds!.after.every((t, i) => t > thresholdsBefore[i]!)).toBe(true);
    });
  });
});
