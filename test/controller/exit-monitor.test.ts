import { describe, expect, it } from 'vitest';
import { ExitMonitor } from '../../controller/exit-monitor.js';
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

  it('re-tunes at once when recent answers violate the budget, and answers fewer early', () => {
    const monitor = new ExitMonitor('m', RAMPS, [0.9, 0.9], 10, { retuneEvery: 10_000, minSamples: 300 });
    const random = seededRandom(2);
    let change;
    for (let i = 0; i < 40 && !change; i++) change = monitor.observe(plan(monitor.currentThresholds), batch(random, 16, 0.2));
    expect(change?.reason).toBe('violation');
    expect(Math.min(...change!.after)).toBeGreaterThan(0.9);
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
});
