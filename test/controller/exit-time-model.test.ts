import { describe, expect, it } from 'vitest';
import { ExitTimeModel } from '../../controller/exit-time-model.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { FakeCluster, MS, modelSpec } from '../support/fake-cluster.js';

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
const model = new ExitTimeModel(profile, costs);

describe('ExitTimeModel', () => {
  it('bounds a batch nobody leaves by the chain overhead plus every active head', () => {
    expect(model.noExitFactor([1, 2], 16)).toBeCloseTo(1.05 + 0.02, 9);
    expect(model.noExitFactor([], 16)).toBeCloseTo(1.05, 9);
  });

  it('release mode never shrinks; compact mode shrinks with the exits', () => {
    const release = { mode: 'release' as const, siteIds: [1, 2], exitRates: [0.5, 0.3], monitorFraction: 0.1 };
    expect(model.factor(release, 16, 16)).toBeCloseTo(model.noExitFactor([1, 2], 16), 9);
    const compact = { ...release, mode: 'compact' as const };
    const f = model.factor(compact, 16, 16);
    // 16 rows to site 1 (0.3), 16 - 8·0.9 = 8.8 to site 2 (0.4), 8.8 - 4.8·0.9 = 4.48 to the end (0.3)
    const expected = (1.05 * (0.3 * 16 + 0.4 * 8.8 + 0.3 * 4.48) + 0.01 * 16 + 0.01 * 8.8) / 16;
    expect(f).toBeCloseTo(expected, 9);
    expect(model.factor({ ...compact, exitRates: [0, 0] }, 16, 16)).toBeCloseTo(model.noExitFactor([1, 2], 16), 9);
  });

  it('drops padding in compact mode: 5 requests padded to 8 cost like 5', () => {
    const compact = { mode: 'compact' as const, siteIds: [1, 2], exitRates: [0, 0], monitorFraction: 0 };
    expect(model.factor(compact, 5, 8) * 8).toBeCloseTo(model.noExitFactor([1, 2], 5) * 5, 6);
  });
});

describe('the scheduler with early exits', () => {
  function cluster(mode: 'release' | 'compact', exitRates: number[]) {
    const spec = modelSpec('ee');
    spec.exitTimeModel = model;
    spec.earlyExit = { mode, ramps: [{ siteId: 1, threshold: 0.9 }, { siteId: 2, threshold: 0.9 }], monitorFraction: 0.1, exitRates };
    const c = new FakeCluster([spec]);
    c.addWorker('w0', 10_000, { inferNs: (_m, b) => b * MS, profileNs: (_m, b) => b * MS });
    c.scheduler.pin('ee');
    c.runForMs(100);
    return c;
  }

  it('places a compact batch on the timeline at its expected duration, shorter than the release one', () => {
    const planned = (mode: 'release' | 'compact') => {
      const c = cluster(mode, [0.5, 0.3]);
      for (let i = 0; i < 16; i++) c.submit('ee', 10_000);
      return c.plan().find((a) => a.action.type === 'infer')!.action;
    };
    const release = planned('release');
    const compact = planned('compact');
    expect(release.type === 'infer' && release.earlyExit?.mode).toBe('release');
    expect(compact.expectedDurationNs).toBeLessThan(0.7 * release.expectedDurationNs);
    expect(release.expectedDurationNs).toBeCloseTo(16 * MS * model.noExitFactor([1, 2], 16), -4);
  });

  it('checks deadlines against the no-exit bound, so expected exits never make a batch too big', () => {
    const c = cluster('compact', [0.9, 0]);
    // 16 requests; batch 16 is expected to take ~7 ms but could take 17 ms if nobody exits
    for (let i = 0; i < 16; i++) c.submit('ee', 20);
    const action = c.plan().find((a) => a.action.type === 'infer')!.action;
    expect(action.type === 'infer' && action.batchSize).toBeLessThan(16);
  });

  it('learns whole-model durations from compact batches by dividing out their actual exits', () => {
    const c = cluster('compact', [0, 0]);
    const ids = Array.from({ length: 16 }, () => c.submit('ee', 10_000));
    const infer = c.plan().find((a) => a.action.type === 'infer')!;
    if (infer.action.type !== 'infer') throw new Error('expected an INFER');
    const keepRows = infer.action.earlyExit!.keepRows;
    c.workers.get('w0')!.queue.length = 0;
    // The worker reports that half the rows left at ramp 1 and the batch took accordingly less.
    const rows = 16;
    const confidences = [Array.from({ length: rows }, (_, r) => (r < 8 ? 0.95 : 0.5)), Array.from({ length: rows }, () => 0.5)];
    const leaving = [8 - keepRows.filter((r) => r < 8).length, 0];
    const factor = model.factor({ mode: 'compact', siteIds: [1, 2], exitRates: [0, 0], monitorFraction: 0 }, 16, 16, leaving);
    const durationNs = 16 * MS * factor;
    const now = c.clock.nowNs();
    c.scheduler.onResult('w0', {
      type: 'result', actionId: infer.action.actionId, actionType: 'infer', modelName: 'ee', code: ErrorCode.OK,
      timing: { receivedNs: now, startNs: now, endNs: now + durationNs, durationNs, sentNs: now + durationNs },
      feedback: { siteIds: [1, 2], confidences, predictions: confidences.map((cs) => cs.map(() => 0)), finalPredictions: Array.from({ length: rows }, (_, r) => (r < 8 && !keepRows.includes(r) ? -1 : 0)) },
      outputRows: Array.from({ length: rows }, (_, r) => r).filter((r) => r >= 8 || keepRows.includes(r)),
    }, now + durationNs);
    const snapshot = c.scheduler.snapshot(now) as { workers: { estimatesMs: Record<string, Record<string, number>> }[] };
    // profile seeded 16 ms for batch 16; the learned whole-model duration stays near it
    expect(snapshot.workers[0]!.estimatesMs.ee!['16']).toBeGreaterThan(15);
    expect(ids).toHaveLength(16);
  });
});

describe('preparing chains for a new ramp set', () => {
  it('plans a RAMPS action on each holder and runs the model whole until the chain is ready', () => {
    const spec = modelSpec('ee');
    spec.exitTimeModel = model;
    spec.loadedRampSet = '1,2';
    spec.earlyExit = { mode: 'compact', ramps: [{ siteId: 1, threshold: 0.9 }, { siteId: 2, threshold: 0.9 }], monitorFraction: 0.1 };
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
