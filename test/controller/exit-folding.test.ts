import { describe, expect, it } from 'vitest';
import { compactRowsOf, exitsOf, foldExitRun } from '../../controller/exit-folding.js';
import { ExitTimeline } from '../../controller/exit-timeline.js';
import type { ActionResultMsg, EarlyExitPlan, InferAction } from '../../shared/protocol.js';

const MS = 1e6;
const byBatch = (perItemMs: number) => ({ 1: perItemMs, 2: 2 * perItemMs, 4: 4 * perItemMs, 8: 8 * perItemMs });
const profile = {
  batchSizes: [1, 2, 4, 8],
  wholeMs: byBatch(1),
  siteUpToMs: { 1: byBatch(0.3), 2: byBatch(0.7) },
  chainMs: byBatch(1.05),
  referenceBatchSize: 4,
};
const timeline = () => new ExitTimeline(profile, { 1: byBatch(0.01), 2: byBatch(0.01) });

const plan = (mode: EarlyExitPlan['mode'], extra: Partial<EarlyExitPlan> = {}): EarlyExitPlan => ({
  mode,
  ramps: [
    { siteId: 1, threshold: 0.9 },
    { siteId: 2, threshold: 0.9 },
  ],
  keepRows: [],
  ...extra,
});
/** Rows 0-1 confident at ramp 1, row 2 at ramp 2, row 3 nowhere. */
const feedback = {
  siteIds: [1, 2],
  confidences: [
    [0.95, 0.99, 0.5, 0.1],
    [0.99, 0.99, 0.93, 0.2],
  ],
  predictions: [
    [1, 1, 1, 1],
    [1, 1, 1, 1],
  ],
  finalPredictions: [1, 1, 1, 1],
};
const action = (p: EarlyExitPlan): InferAction => ({
  type: 'infer',
  actionId: 1,
  earliestNs: 0,
  latestNs: 0,
  expectedDurationNs: 0,
  expectedStartNs: 0,
  modelName: 'm',
  batchSize: 4,
  numRequests: 4,
  inputs: [],
  earlyExit: p,
});
const result = (durationNs: number, stages: ActionResultMsg['stages'] = []): ActionResultMsg => ({
  type: 'result',
  actionId: 1,
  actionType: 'infer',
  modelName: 'm',
  code: 0,
  timing: { receivedNs: 0, startNs: 1, endNs: 1 + durationNs, durationNs, sentNs: 1 + durationNs },
  feedback,
  stages,
});

describe('folding a finished early-exit INFER', () => {
  it('counts each row at the first ramp whose confidence reaches its threshold', () => {
    expect(exitsOf(plan('compact'), feedback, 4)).toEqual({ reached: [4, 2], answered: [2, 1] });
    expect(exitsOf(plan('compact'), undefined, 4)).toBeUndefined();
    expect(exitsOf({ ...plan('compact'), ramps: [{ siteId: 7, threshold: 0.9 }] }, feedback, 4)).toBeUndefined(); // feedback for another ramp set
  });

  it('runs kept rows to the end in compact mode', () => {
    expect(compactRowsOf(plan('compact'), { reached: [4, 2], answered: [2, 1] }, 4)).toEqual([4, 2, 1]);
    expect(compactRowsOf(plan('compact', { keepRows: [0] }), { reached: [4, 2], answered: [2, 1] }, 4)).toEqual([4, 3, 2]);
  });

  it("returns the compact factor of the rows each segment ran, the fused model's heads, and a release chain's learned cost", () => {
    const t = timeline();
    // compact: 4 rows, then 2, then 1 (as the stages report them)
    const compact = foldExitRun(
      t,
      action(plan('compact')),
      result(3 * MS, [
        { name: 'segment->1', durationNs: MS, numRows: 4 },
        { name: 'segment->2', durationNs: MS, numRows: 2 },
        { name: 'final', durationNs: MS, numRows: 1 },
      ]),
      4 * MS,
      0,
    );
    expect(compact).toBeCloseTo(t.factorOf([1, 2], [4, 2, 1], 4), 9);
    expect(compact).toBeLessThan(t.noExitFactor([1, 2], 4));
    expect(foldExitRun(t, action(plan('release', { fused: true })), result(4.1 * MS), 4 * MS, 0)).toBeCloseTo(t.fusedFactor([1, 2], 4), 9);
    // a release chain that ran 1.5x the whole model's expected 4 ms, five times: that is its factor now
    let factor = 0;
    for (let i = 0; i < 5; i++) factor = foldExitRun(t, action(plan('release')), result(6 * MS), 4 * MS, 0);
    expect(factor).toBeCloseTo(1.5, 9);
    expect(foldExitRun(t, { ...action(plan('release')), earlyExit: undefined } as InferAction, result(4 * MS), 4 * MS, 0)).toBe(1);
  });
});
