import { describe, expect, it } from 'vitest';
import { ExitTimeline, segmentOfStage } from '../../controller/exit-timeline.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { FakeCluster, MS, modelSpec, type FakeWorkerKnobs } from '../support/fake-cluster.js';

const byBatch = (perItemMs: number) => ({ 1: perItemMs, 2: 2 * perItemMs, 4: 4 * perItemMs, 8: 8 * perItemMs, 16: 16 * perItemMs });
// A model of 1 ms per item: ramp sites at 30 % and 70 % of it; the chain costs 5 % more.
const profile = {
  batchSizes: [1, 2, 4, 8, 16],
  wholeMs: byBatch(1),
  siteUpToMs: { 1: byBatch(0.3), 2: byBatch(0.7) },
  chainMs: byBatch(1.05),
  referenceBatchSize: 4,
};
const costs = { 1: byBatch(0.01), 2: byBatch(0.01) };
const timeline = () => new ExitTimeline(profile, costs);
const S = 1e9;

/** Feeds a timeline `numBatches` batches of 16 in which the given rows are answered at each ramp. */
function teach(t: ExitTimeline, answered: [number, number], numBatches = 40): void {
  t.configure('compact|1:0.9,2:0.9', 2);
  for (let i = 0; i < numBatches; i++) t.observe([1, 2], { reached: [16, 16 - answered[0]], answered }, [], i * 0.01 * S);
}

describe('ExitTimeline', () => {
  it('bounds a batch nobody leaves by the chain overhead plus every active head', () => {
    expect(timeline().noExitFactor([1, 2], 16)).toBeCloseTo(1.05 + 0.02, 9);
    expect(timeline().noExitFactor([], 16)).toBeCloseTo(1.05, 9);
  });

  it('assumes nobody leaves until exits have been seen, in either mode', () => {
    const t = timeline();
    t.configure('compact|1:0.9,2:0.9', 2);
    const compact = t.timing('compact', [1, 2], 16, 16, 0.1);
    expect(compact.boundFactor).toBeCloseTo(t.noExitFactor([1, 2], 16), 9);
    expect(compact.expectedFactor).toBeCloseTo(compact.boundFactor, 9);
    expect(compact.survivors.informed).toBe(false);
  });

  it('release mode never shrinks a batch, whatever the exits', () => {
    const t = timeline();
    teach(t, [8, 4]);
    const release = t.timing('release', [1, 2], 16, 16, 0);
    expect(release.boundFactor).toBeCloseTo(t.noExitFactor([1, 2], 16), 9);
    expect(release.expectedFactor).toBeCloseTo(release.boundFactor, 9);
  });

  it('counts observed exits in compact mode: expected < bound < no-exit', () => {
    const t = timeline();
    teach(t, [8, 4]);
    const compact = t.timing('compact', [1, 2], 16, 16, 0);
    const noExit = t.noExitFactor([1, 2], 16);
    // 16 rows to site 1 (0.3 of the model), 8 to site 2 (0.4), 4 to the end (0.3), heads included
    const expected = (noExit * (1.05 * (0.3 * 16 + 0.4 * 8 + 0.3 * 4) + 0.01 * 16 + 0.01 * 8)) / (1.05 * 16 + 0.02 * 16);
    expect(compact.expectedFactor).toBeCloseTo(expected, 6);
    expect(compact.boundFactor).toBeGreaterThan(compact.expectedFactor);
    expect(compact.boundFactor).toBeLessThan(noExit);
  });

  it('drops padding in compact mode: 5 requests padded to 8 cost like 5', () => {
    const t = timeline();
    t.configure('compact|1:0.9,2:0.9', 2);
    expect(t.timing('compact', [1, 2], 5, 8, 0).boundFactor * 8).toBeCloseTo(t.noExitFactor([1, 2], 5) * 5, 6);
  });

  it('learns the segments from stage timings: a slow last segment makes exits worth more', () => {
    const t = timeline();
    teach(t, [8, 4]);
    const before = t.timing('compact', [1, 2], 16, 16, 0).expectedFactor;
    // Measured: the last segment takes 3x its profiled share.
    for (let i = 0; i < 400; i++) {
      const rows = 1 + (i % 16);
      t.observe([1, 2], undefined, [{ segment: 0, rows, durationNs: 0.315 * MS * rows }, { segment: 1, rows, durationNs: 0.42 * MS * rows }, { segment: 2, rows, durationNs: 0.945 * MS * rows }], S);
    }
    expect(t.timing('compact', [1, 2], 16, 16, 0).expectedFactor).toBeLessThan(before);
  });

  it('names the segment of every stage a chain reports', () => {
    expect(segmentOfStage('segment->5', [2, 5, 9])).toBe(1);
    expect(segmentOfStage('ramp9', [2, 5, 9])).toBe(2);
    expect(segmentOfStage('final', [2, 5, 9])).toBe(3);
    expect(segmentOfStage('segment->7', [2, 5, 9])).toBeUndefined();
    expect(segmentOfStage('model', [2, 5, 9])).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// The scheduler on a fake cluster whose workers answer rows at the ramps

const RAMPS = [{ siteId: 1, threshold: 0.9 }, { siteId: 2, threshold: 0.9 }];
/** Segment s of the chain, as the profile has it: 0.3 / 0.4 / 0.3 ms per row, 5 % chain overhead, heads 0.01 ms. */
const segmentNs = (_m: string, s: number, rows: number) => rows * MS * (1.05 * [0.3, 0.4, 0.3][s]! + (s < 2 ? 0.01 : 0));

function exitCluster(mode: 'release' | 'compact', exitShares: FakeWorkerKnobs['exitShares'], numWorkers = 1) {
  const spec = modelSpec('ee');
  spec.exitTimeline = new ExitTimeline(profile, costs);
  spec.earlyExit = { mode, ramps: RAMPS, monitorFraction: 0.1 };
  const c = new FakeCluster([spec]);
  for (let w = 0; w < numWorkers; w++) c.addWorker(`w${w}`, 10_000, { inferNs: (_m, b) => b * MS, profileNs: (_m, b) => b * MS, exitShares, segmentNs });
  c.scheduler.pin('ee');
  c.runForMs(100);
  return c;
}

/** Submits `count` requests every `gapMs` for `ms`; returns their ids and arrival times. */
function steadyLoad(c: FakeCluster, ms: number, gapMs: number, sloMs: number): { id: number; atNs: number }[] {
  const ids: { id: number; atNs: number }[] = [];
  const endNs = c.clock.nowNs() + ms * MS;
  while (c.clock.nowNs() < endNs) {
    ids.push({ id: c.submit('ee', sloMs), atNs: c.clock.nowNs() });
    c.runForMs(gapMs);
  }
  return ids;
}

describe('the scheduler with early exits', () => {
  it('places a compact batch on the timeline at its expected duration, shorter than the release one, once exits are seen', () => {
    const planned = (mode: 'release' | 'compact') => {
      const c = exitCluster(mode, () => [0.5, 0.25]);
      steadyLoad(c, 200, 2, 1_000); // evidence: ~100 rows
      c.runForMs(30); // idle again
      for (let i = 0; i < 16; i++) c.submit('ee', 10_000);
      return c.plan().find((a) => a.action.type === 'infer')!.action;
    };
    const release = planned('release');
    const compact = planned('compact');
    expect(release.type === 'infer' && release.earlyExit?.mode).toBe('release');
    expect(compact.type === 'infer' && compact.batchSize).toBe(16);
    expect(compact.expectedDurationNs).toBeLessThan(0.7 * release.expectedDurationNs);
  });

  it('sizes batches by the exit-aware bound: a batch too long without exits fits with them', () => {
    const batchFor = (exitShares: number[]) => {
      const c = exitCluster('compact', () => exitShares);
      steadyLoad(c, 200, 2, 1_000);
      c.runForMs(30);
      // 16 requests; batch 16 is ~17 ms if nobody exits, ~8 ms at the exits seen
      for (let i = 0; i < 16; i++) c.submit('ee', 20);
      const action = c.plan().find((a) => a.action.type === 'infer')!.action;
      return action.type === 'infer' ? action.numRequests : 0;
    };
    expect(batchFor([0, 0])).toBeLessThan(16); // (the rest were rejected at arrival)
    expect(batchFor([0.6, 0.3])).toBe(16);
  });

  it('admits more of a burst when exits free capacity, and what it admits makes its deadline', () => {
    const burst = (exitShares: number[]) => {
      const c = exitCluster('compact', () => exitShares, 2);
      steadyLoad(c, 200, 1, 1_000);
      const ids = Array.from({ length: 200 }, () => c.submit('ee', 40));
      c.runForMs(200);
      const outcomes = ids.map((id) => c.outcomeOf(id)!);
      return {
        admitted: outcomes.filter((o) => o.status !== 'REJECTED').length,
        missedAfterAdmission: outcomes.filter((o) => o.status === 'DEADLINE_MISSED').length,
      };
    };
    const without = burst([0, 0]);
    const withExits = burst([0.6, 0.3]);
    expect(without.missedAfterAdmission).toBe(0);
    expect(withExits.missedAfterAdmission).toBe(0);
    expect(withExits.admitted).toBeGreaterThan(1.4 * without.admitted);
  });

  it('falls back to the no-exit bound when the exits collapse, without a burst of misses', () => {
    const collapseNs = 1_000 * MS + 500 * MS;
    const c = exitCluster('compact', (_m, nowNs) => (nowNs < collapseNs ? [0.6, 0.3] : [0, 0]), 2);
    // ~1.5x what two workers serve without exits, ~0.8x what they serve with them
    const requests = steadyLoad(c, 900, 0.4, 30);
    c.runForMs(100);
    const missed = requests.filter((r) => c.outcomeOf(r.id)?.status === 'DEADLINE_MISSED');
    const evidence = c.scheduler.modelSpec('ee')!.exitTimeline!.currentEvidence!;
    expect(evidence.collapses).toBeGreaterThanOrEqual(1);
    // What was admitted before the planner saw the collapse may miss; nothing admitted later does.
    expect(missed.length).toBeLessThanOrEqual(16);
    expect(missed.filter((r) => r.atNs > collapseNs + 20 * MS)).toHaveLength(0);
    // After it, the overload is rejected at arrival instead.
    const after = requests.filter((r) => r.atNs > collapseNs + 20 * MS);
    expect(after.filter((r) => c.outcomeOf(r.id)?.code === ErrorCode.CANNOT_MEET_DEADLINE).length).toBeGreaterThan(0.15 * after.length);
    expect(after.filter((r) => c.outcomeOf(r.id)?.status === 'OK').length).toBeGreaterThan(0.5 * after.length);
  });

  it('learns whole-model durations from compact batches by dividing out their actual exits', () => {
    const c = exitCluster('compact', () => [0.5, 0]);
    steadyLoad(c, 300, 1, 1_000);
    const snapshot = c.scheduler.snapshot(c.clock.nowNs()) as { workers: { estimatesMs: Record<string, Record<string, number>> }[] };
    // profile: 1 ms per item; every batch ran as a chain with exits, and the learned whole-model
    // durations stay near the truth (batch 1 runs 1 ms whole)
    expect(snapshot.workers[0]!.estimatesMs.ee!['1']).toBeGreaterThan(0.8);
    expect(snapshot.workers[0]!.estimatesMs.ee!['1']).toBeLessThan(1.25);
  });
});

describe('preparing chains for a new ramp set', () => {
  it('plans a RAMPS action on each holder and runs the model whole until the chain is ready', () => {
    const spec = modelSpec('ee');
    spec.exitTimeline = new ExitTimeline(profile, costs);
    spec.loadedRampSet = '1,2';
    spec.earlyExit = { mode: 'compact', ramps: RAMPS, monitorFraction: 0.1 };
    // a 1 ms RAMPS estimate lets an INFER be planned right behind it, before its result is known
    const c = new FakeCluster([spec], { defaultRampsNs: 1 * MS });
    c.addWorker('w0', 10_000, { inferNs: (_m, b) => b * MS });
    c.scheduler.pin('ee');
    c.runForMs(100);
    const withRamps = () => {
      c.submit('ee', 10_000);
      const infer = c.plan().find((a) => a.action.type === 'infer')!.action;
      c.runForMs(50);
      return infer.type === 'infer' ? infer.earlyExit : undefined;
    };
    expect(withRamps()?.ramps.map((r) => r.siteId)).toEqual([1, 2]); // the set the LOAD prepared
    // The adjuster drops ramp 1: the worker needs the chain for [2] first.
    c.scheduler.setExitConfig('ee', { ...spec.earlyExit, ramps: [{ siteId: 2, threshold: 0.9 }] });
    c.submit('ee', 10_000);
    const actions = c.plan();
    const ramps = actions.find((a) => a.action.type === 'ramps');
    expect(ramps?.action.type === 'ramps' && ramps.action.siteIds).toEqual([2]);
    const infer = actions.find((a) => a.action.type === 'infer')?.action;
    expect(infer?.type).toBe('infer');
    expect(infer?.type === 'infer' ? infer.earlyExit : 'none').toBeUndefined(); // whole model meanwhile
    c.runForMs(100);
    expect(withRamps()?.ramps.map((r) => r.siteId)).toEqual([2]);
    expect(c.plan().some((a) => a.action.type === 'ramps')).toBe(false); // prepared once
  });
});
