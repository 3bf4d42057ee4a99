import { describe, expect, it } from 'vitest';
import { LatencyEstimator } from '../../controller/latency-estimator.js';
import { WorkerTimeline } from '../../controller/worker-timeline.js';
import { RequestQueue } from '../../controller/request-queue.js';

describe('LatencyEstimator', () => {
  it('starts from the profile and follows measurements at the configured percentile', () => {
    const est = new LatencyEstimator({ windowSize: 10, percentile: 0.5, expectedPercentile: 0.5, shiftStep: 0 });
    est.seed('m', 'w', 4, 1000, 1200);
    expect(est.estimateNs('m', 'w', 4)).toBe(1000);
    for (let i = 0; i < 10; i++) est.record('m', 'w', 4, 3000);
    expect(est.estimateNs('m', 'w', 4)).toBe(3000);
  });

  it('ignores a single outlier at p95 of a 100-sample window', () => {
    const est = new LatencyEstimator({ windowSize: 100, percentile: 0.95, expectedPercentile: 0.5, shiftStep: 0 });
    for (let i = 0; i < 99; i++) est.record('m', 'w', 1, 1000);
    est.record('m', 'w', 1, 50_000);
    expect(est.estimateNs('m', 'w', 1)).toBe(1000);
  });

  it('applies the drift learned at one batch size to sizes not measured since the profile', () => {
    const est = new LatencyEstimator();
    est.seed('m', 'w', 1, 1000, 1000);
    est.seed('m', 'w', 16, 10_000, 10_000);
    est.record('m', 'w', 16, 30_000); // 3x slower than profiled
    expect(est.estimateNs('m', 'w', 1)).toBeCloseTo(3000, -1);
  });

  it('bounds a rarely run batch size by the tail the worker shows now, every size pooled', () => {
    const est = new LatencyEstimator({ windowSize: 100, percentile: 0.95, expectedPercentile: 0.5, shiftStep: 0, tailWindow: 64 });
    // batch 16 ran only in quiet times: its own window says 16 ms flat
    for (let i = 0; i < 20; i++) est.record('m', 'w', 16, 16_000);
    expect(est.estimateNs('m', 'w', 16)).toBe(16_000);
    // now the host is busy: batch 1 runs alternate between 1 ms and 2 ms
    for (let i = 0; i < 60; i++) est.record('m', 'w', 1, i % 2 === 0 ? 1000 : 2000);
    // batch 16's median stays 16 ms, but its bound carries the pooled tail (~2x)
    expect(est.expectedNs('m', 'w', 16)).toBe(16_000);
    expect(est.estimateNs('m', 'w', 16)!).toBeGreaterThan(24_000);
    const off = new LatencyEstimator({ windowSize: 100, percentile: 0.95, expectedPercentile: 0.5, shiftStep: 0 });
    for (let i = 0; i < 20; i++) off.record('m', 'w', 16, 16_000);
    for (let i = 0; i < 60; i++) off.record('m', 'w', 1, i % 2 === 0 ? 1000 : 2000);
    expect(off.estimateNs('m', 'w', 16)).toBe(16_000);
  });

  it('reads the median for timelines and the high percentile for deadline checks from one window', () => {
    const est = new LatencyEstimator({ windowSize: 100, percentile: 0.95, expectedPercentile: 0.5, shiftStep: 0 });
    // A shared-CPU tail: 80 % of runs take 10 ms, 20 % take 20 ms.
    for (let i = 0; i < 100; i++) est.record('m', 'w', 8, i % 5 === 0 ? 20_000_000 : 10_000_000);
    expect(est.expectedNs('m', 'w', 8)).toBe(10_000_000);
    expect(est.estimateNs('m', 'w', 8)).toBe(20_000_000);
    est.record('m', 'w', 8, 30_000_000); // the sorted window follows every insert
    expect(est.estimateNs('m', 'w', 8)).toBe(20_000_000);
    expect(est.expectedNs('m', 'w', 8)).toBe(10_000_000);
    expect(est.expectedNs('m', 'w', 4)).toBeUndefined();
  });

  it('shifts every batch size of a worker that slows down, faster than the windows follow', () => {
    const est = new LatencyEstimator({ windowSize: 100, percentile: 0.95, expectedPercentile: 0.5, shiftStep: 0.03 });
    for (const b of [1, 8]) est.seed('m', 'w', b, b * 1000, b * 1200);
    // A stationary, noisy stretch at the profiled speed: the shift stays near 1.
    let state = 7;
    const noise = () => 0.8 + 0.4 * ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    for (let i = 0; i < 400; i++) est.record('m', 'w', i % 2 === 0 ? 1 : 8, (i % 2 === 0 ? 1000 : 8000) * noise());
    expect(est.expectedNs('m', 'w', 8)! / 8000).toBeGreaterThan(0.9);
    expect(est.expectedNs('m', 'w', 8)! / 8000).toBeLessThan(1.1);
    const windowOnly = new LatencyEstimator({ windowSize: 100, percentile: 0.95, expectedPercentile: 0.5, shiftStep: 0 });
    windowOnly.seed('m', 'w', 8, 8000, 9600);
    for (let i = 0; i < 100; i++) windowOnly.record('m', 'w', 8, 8000);
    // Then the worker runs 1.5x slower, seen only at batch 1 for 30 runs.
    for (let i = 0; i < 30; i++) est.record('m', 'w', 1, 1500 * noise());
    expect(est.expectedNs('m', 'w', 1)!).toBeGreaterThan(1250);
    // batch 8 has not run since, yet its estimate moved with the worker (a window alone would not)
    expect(est.expectedNs('m', 'w', 8)!).toBeGreaterThan(1.15 * 8000);
    expect(windowOnly.expectedNs('m', 'w', 8)).toBe(8000);
  });

  it("does not carry one batch size's speed-up to the others (quiet time between bursts)", () => {
    const est = new LatencyEstimator({ windowSize: 100, percentile: 0.95, expectedPercentile: 0.5, shiftStep: 0.03 });
    for (const b of [1, 16]) est.seed('m', 'w', b, b * 1000, b * 1200);
    // A burst: batches of 16 and of 1 alike run 2.9x their profile.
    for (let i = 0; i < 40; i++) est.record('m', 'w', i % 4 === 0 ? 16 : 1, i % 4 === 0 ? 46_000 : 4300);
    const burstNs = est.expectedNs('m', 'w', 16)!;
    expect(burstNs).toBeGreaterThanOrEqual(46_000);
    // Between bursts only batches of 1 run, faster than their window (which holds the burst) remembers.
    for (let i = 0; i < 30; i++) est.record('m', 'w', 1, 3400);
    expect(est.expectedNs('m', 'w', 1)!).toBeLessThan(4300); // batch 1's own window follows it
    // batch 16 has not run since: its estimate stays what its runs said (a shift below 1 took it to ~0.6x)
    expect(est.expectedNs('m', 'w', 16)!).toBeGreaterThanOrEqual(46_000);
    expect(est.estimateNs('m', 'w', 16)!).toBeGreaterThanOrEqual(46_000);
  });

  it('reads percentiles of exactly the last window of samples, in any arrival order', () => {
    const est = new LatencyEstimator({ windowSize: 50, percentile: 1, expectedPercentile: 0, shiftStep: 0 });
    // A shuffled stream of 0..999 (multiplier coprime with 1000): the window's min and max are
    // those of the last 50 values, so every eviction must take out the right sample.
    const stream = Array.from({ length: 1000 }, (_, i) => (i * 379) % 1000);
    stream.forEach((v, i) => {
      est.record('m', 'w', 1, v);
      const window = stream.slice(Math.max(0, i - 49), i + 1);
      expect(est.estimateNs('m', 'w', 1)).toBe(Math.max(...window));
      expect(est.expectedNs('m', 'w', 1)).toBe(Math.min(...window));
    });
  });

  it('reads exactly the window left after samples age out, as later ones come and go by count', () => {
    const S = 1e9;
    const est = new LatencyEstimator({ windowSize: 5, percentile: 1, expectedPercentile: 0, shiftStep: 0, maxSampleAgeNs: 10 * S });
    // 0..99 at one per second (shuffled values): each read sees the values of the last 10 s, at most 5
    const stream = Array.from({ length: 100 }, (_, i) => (i * 37) % 100);
    stream.forEach((v, i) => {
      est.record('m', 'w', 1, v, i * S);
      const window = stream.slice(Math.max(0, i - 4), i + 1);
      expect([est.expectedNs('m', 'w', 1), est.estimateNs('m', 'w', 1)]).toEqual([Math.min(...window), Math.max(...window)]);
    });
    // a sample every 3 s: the window holds those of the last 10 s only (4 of them), not the last 5
    const sparse = new LatencyEstimator({ windowSize: 5, percentile: 1, expectedPercentile: 0, shiftStep: 0, maxSampleAgeNs: 10 * S });
    [50, 10, 20, 30, 40, 45].forEach((v, i) => sparse.record('m', 'w', 1, v, i * 3 * S));
    expect(sparse.expectedNs('m', 'w', 1)).toBe(20); // 50 and 10 (at 0 s and 3 s) are older than 10 s at 15 s
  });

  it("ages a worker's estimates even while it gets no results, at most every tenth of the age limit", () => {
    const S = 1e9;
    const est = new LatencyEstimator({ windowSize: 100, percentile: 0.95, expectedPercentile: 0.5, shiftStep: 0, maxSampleAgeNs: 10 * S });
    est.seed('m', 'idle', 4, 1_000, 1_000, 0);
    for (let i = 0; i < 10; i++) est.record('m', 'idle', 4, 5_000, 1 * S);
    est.ageAll(1 * S); // a sweep: the next one comes 1 s later at the earliest
    est.ageAll(10.5 * S); // a sweep: nothing is 10 s old yet (the next at 11.5 s)
    expect(est.expectedNs('m', 'idle', 4)).toBe(5_000);
    est.ageAll(11.2 * S); // too soon for a sweep, although the samples are now 10.2 s old
    expect(est.expectedNs('m', 'idle', 4)).toBe(5_000);
    est.ageAll(11.5 * S);
    // back to the profile: the samples, and the 5x drift they taught, are gone
    expect(est.expectedNs('m', 'idle', 4)).toBe(1_000);
    expect(est.estimateNs('m', 'idle', 4)).toBe(1_000);
  });

  it("lets a rarely run batch size's old measurements go: it is back to profile x drift, not the last burst's contention", () => {
    const S = 1e9;
    const run = (maxSampleAgeNs: number) => {
      const est = new LatencyEstimator({ windowSize: 100, percentile: 0.95, expectedPercentile: 0.5, shiftStep: 0, maxSampleAgeNs });
      est.seed('m', 'w', 1, 1_000, 1_100, 0);
      est.seed('m', 'w', 16, 10_000, 11_000, 0);
      est.record('m', 'w', 0, 50_000, 0); // a LOAD's duration: a key without a profile
      // a burst at 1 s: batches of 16 at 2.5x their profile, the host crowded
      for (let i = 0; i < 20; i++) est.record('m', 'w', 16, 25_000, 1 * S + i * 1e6);
      const duringBurst = est.expectedNs('m', 'w', 16)!;
      // then 20 s of batches of 1 at their profiled speed
      for (let t = 2 * S; t <= 22 * S; t += 0.1 * S) est.record('m', 'w', 1, 1_000, t);
      return { duringBurst, after: est.expectedNs('m', 'w', 16)!, afterBound: est.estimateNs('m', 'w', 16)!, load: est.expectedNs('m', 'w', 0) };
    };
    const aged = run(10 * S);
    expect(aged.duringBurst).toBe(25_000);
    expect(aged.after).toBeCloseTo(10_000, -2); // the profile, times a drift back near 1
    expect(aged.afterBound).toBeGreaterThan(aged.after); // the profile's p99 is back in the window
    expect(aged.afterBound).toBeLessThan(11_500);
    expect(aged.load).toBe(50_000); // no profile to go back to: the newest sample stays
    expect(run(0).after).toBe(25_000); // without the age limit, the burst is remembered
  });

  it('answers repeated reads of one key from the current state after a re-seed or a removal', () => {
    const est = new LatencyEstimator();
    est.seed('m', 'w', 2, 1000, 1000);
    expect(est.estimateNs('m', 'w', 2)).toBe(1000);
    est.seed('m', 'w', 2, 7000, 7000); // a new LOAD profile replaces the window
    expect(est.expectedNs('m', 'w', 2)).toBe(7000);
    est.forgetWorker('w');
    expect(est.estimateNs('m', 'w', 2)).toBeUndefined();
    est.record('m', 'w', 2, 3000);
    expect(est.expectedNs('m', 'w', 2)).toBe(3000);
  });

  it('keeps workers apart and forgets a removed one', () => {
    const est = new LatencyEstimator();
    est.record('m', 'a', 1, 1000);
    est.record('m', 'b', 1, 5000);
    expect(est.estimateNs('m', 'a', 1)).toBe(1000);
    est.forgetWorker('b');
    expect(est.estimateNs('m', 'b', 1)).toBeUndefined();
  });
});

describe('WorkerTimeline', () => {
  it('predicts the free time as the sum of planned durations from the last actual end', () => {
    const t = new WorkerTimeline({ lagNs: 10_000_000, futureNs: 0 });
    t.add(1, 2_000_000, 100_000_000);
    t.add(2, 3_000_000, 100_000_000);
    expect(t.freeAtNs(100_000_000)).toBe(105_000_000);
    t.complete(1, 104_000_000); // ran 2 ms late
    expect(t.freeAtNs(104_000_000)).toBe(107_000_000);
  });

  it('re-bases an overdue plan so the remaining actions run from lag ago, not from the stale anchor', () => {
    const t = new WorkerTimeline({ lagNs: 10_000_000, futureNs: 0 });
    t.add(1, 2_000_000, 0);
    t.add(2, 20_000_000, 0);
    // without re-basing the plan would end at 22 ms; at 50 ms with no result, the head is
    // assumed to have ended at 40 ms and action 2 to end 20 ms later
    expect(t.freeAtNs(50_000_000)).toBe(60_000_000);
  });

  it("learns the worker's own start delay from actions planned while it was idle, and plans with its median", () => {
    const MS = 1_000_000;
    const t = new WorkerTimeline({ lagNs: 10 * MS, futureNs: 0.5 * MS });
    let nowNs = 0;
    let id = 1;
    const idleAction = (delayNs: number) => {
      nowNs += 50 * MS;
      t.add(id, 2 * MS, nowNs);
      t.complete(id++, nowNs + delayNs + 2 * MS, nowNs + delayNs);
    };
    // too few samples yet: the configured delay
    for (let i = 0; i < 15; i++) idleAction(2 * MS);
    expect(t.freeAtNs(nowNs + 60 * MS)).toBe(nowNs + 60.5 * MS);
    idleAction(2 * MS);
    expect(t.startDelayNs).toBe(2 * MS);
    expect(t.freeAtNs(nowNs + 60 * MS)).toBe(nowNs + 62 * MS);
    // a third of the samples far out moves the median nowhere; an action queued behind another teaches nothing
    for (let i = 0; i < 8; i++) idleAction(9 * MS);
    nowNs += 50 * MS;
    t.add(100, 2 * MS, nowNs);
    t.add(101, 2 * MS, nowNs); // planned behind 100: its start measures 100's run, not the delay
    t.complete(100, nowNs + 4 * MS, nowNs + 2 * MS);
    t.complete(101, nowNs + 40 * MS, nowNs + 38 * MS);
    expect(t.startDelayNs).toBe(2 * MS);
    // an action that never started (refused: start 0) teaches nothing either
    t.add(102, 2 * MS, nowNs + 50 * MS);
    t.complete(102, nowNs + 51 * MS, 0);
    expect(t.startDelayNs).toBe(2 * MS);
  });

  it('does not take the wait behind a run that overran its prediction for a start delay', () => {
    const MS = 1_000_000;
    const t = new WorkerTimeline({ lagNs: 10 * MS, futureNs: 0.5 * MS });
    let nowNs = 0;
    let id = 1;
    for (let i = 0; i < 40; i++) {
      nowNs += 50 * MS;
      // a run predicted at 2 ms overruns to 8 ms; at 3 ms, with its result not in, the worker looks
      // idle and the next action is planned; it starts when the run ends
      t.add(id, 2 * MS, nowNs);
      t.add(id + 1, 2 * MS, nowNs + 3 * MS);
      t.complete(id, nowNs + 8.3 * MS, nowNs + 0.3 * MS); // the first one, planned idle: 0.3 ms
      t.complete(id + 1, nowNs + 10.3 * MS, nowNs + 8.3 * MS); // 5.3 ms after it was planned: not a delay
      id += 2;
    }
    expect(t.startDelayNs).toBeCloseTo(0.3 * MS, 0);
  });
});

describe('RequestQueue', () => {
  it('orders by deadline with ties in arrival order and counts what is ahead', () => {
    const q = new RequestQueue();
    const r = (id: number, deadlineNs: number) => ({ id, model: 'm', arrivalNs: 0, deadlineNs });
    q.insert(r(1, 50));
    q.insert(r(2, 10));
    q.insert(r(3, 50));
    expect(q.insert(r(4, 30))).toBe(1);
    expect(q.take(4).map((x) => x.id)).toEqual([2, 4, 1, 3]);
    q.insert(r(5, 10));
    expect(q.countAhead(10)).toBe(1);
    expect(q.countAhead(9)).toBe(0);
  });
});
