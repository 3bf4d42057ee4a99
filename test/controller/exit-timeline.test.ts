import { describe, expect, it } from 'vitest';
import { ExitTimeline, segmentOfStage } from '../../controller/exit-timeline.js';
import { ErrorCode } from '../../shared/error-codes.js';
import type { InferAction } from '../../shared/protocol.js';
import { FakeCluster, MS, modelSpec } from '../support/fake-cluster.js';
import { EXIT_PROFILE, HEAD_COSTS, RAMPS, exitCluster, segmentNs } from '../support/exit-cluster.js';

// A model of 1 ms per item: ramp sites at 30 % and 70 % of it; the chain costs 5 % more.
const profile = EXIT_PROFILE;
const costs = HEAD_COSTS;
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

  it('answers repeated questions from a memo it refreshes every 32 rows, and at once when the exits collapse', () => {
    const t = timeline();
    teach(t, [8, 4]);
    const before = t.timing('compact', [1, 2], 16, 16, 0.1);
    expect(t.timing('compact', [1, 2], 16, 16, 0.1)).toBe(before); // the same answer, not recomputed
    // 16 rows in which everybody leaves early: the memo holds until 32 rows came in
    t.observe([1, 2], { reached: [16, 0], answered: [16, 0] }, [], 41 * 0.01 * S);
    expect(t.timing('compact', [1, 2], 16, 16, 0.1)).toBe(before);
    t.observe([1, 2], { reached: [16, 0], answered: [16, 0] }, [], 42 * 0.01 * S);
    const refreshed = t.timing('compact', [1, 2], 16, 16, 0.1);
    expect(refreshed).not.toBe(before);
    expect(refreshed.expectedFactor).toBeLessThan(before.expectedFactor);
    // nobody leaves a batch of 16 where ~12 were expected to: the evidence restarts, and the planner sees it now
    t.observe([1, 2], { reached: [16, 16], answered: [0, 0] }, [], 43 * 0.01 * S);
    const collapsed = t.timing('compact', [1, 2], 16, 16, 0.1);
    expect(collapsed).not.toBe(refreshed);
    expect(collapsed.boundFactor).toBeGreaterThan(refreshed.boundFactor);
  });

  it('assumes nobody leaves until exits have been seen, in either mode', () => {
    const t = timeline();
    t.configure('compact|1:0.9,2:0.9', 2);
    const compact = t.timing('compact', [1, 2], 16, 16, 0.1);
    expect(compact.boundFactor).toBeCloseTo(t.noExitFactor([1, 2], 16), 9);
    expect(compact.expectedFactor).toBeCloseTo(compact.boundFactor, 9);
    expect(compact.survivors.informed).toBe(false);
  });

  it('answers timing again from what it learned since, not from an earlier answer', () => {
    const t = timeline();
    teach(t, [8, 4]);
    const before = t.timing('compact', [1, 2], 16, 16, 0.1);
    expect(t.timing('compact', [1, 2], 16, 16, 0.1)).toBe(before); // unchanged state: the same answer
    expect(t.timing('compact', [1, 2], 16, 16, 0.5).expectedFactor).toBeGreaterThan(before.expectedFactor); // more kept rows
    for (let i = 0; i < 40; i++) t.observe([1, 2], { reached: [16, 16], answered: [0, 0] }, [], (1 + i * 0.01) * S);
    expect(t.timing('compact', [1, 2], 16, 16, 0.1).expectedFactor).toBeGreaterThan(before.expectedFactor); // exits fell
    const other = t.timing('compact', [2], 16, 16, 0.1); // another ramp set: its own answer
    expect(other.boundFactor).not.toBeCloseTo(t.timing('compact', [1, 2], 16, 16, 0.1).boundFactor, 6);
  });

  it('costs a fused release batch (whole model plus heads) the heads only, below the chain', () => {
    expect(timeline().fusedFactor([1, 2], 16)).toBeCloseTo(1 + 0.02, 9);
    expect(timeline().fusedFactor([1, 2], 16)).toBeLessThan(timeline().noExitFactor([1, 2], 16));
  });

  it("weighs a release chain's early answers against what its extra time costs the rest", () => {
    const t = timeline();
    expect(t.releaseChainGain([1, 2], 16, 16, 0)).toBeLessThan(0); // no evidence: nobody exits
    teach(t, [8, 4]);
    // Segments of 16 rows: 5.2, 6.88 and 5.04 ms (chain overhead and heads); 8 rows answered after
    // the first, 4 after the second, 4 run to the end; fused ends at 1.02, the chain at 1.07.
    const chainMs = 5.2 + 6.88 + 5.04;
    const at1 = (1.07 * 5.2) / chainMs;
    const at2 = (1.07 * (5.2 + 6.88)) / chainMs;
    const expected = 8 * (1.02 - at1) + 4 * (1.02 - at2) - 4 * 0.05;
    expect(t.releaseChainGain([1, 2], 16, 16, 0)).toBeCloseTo(expected, 6);
    expect(t.releaseChainGain([1, 2], 16, 16, 100)).toBeCloseTo(expected - 100 * 0.05, 6);
    expect(t.releaseChainGain([1, 2], 16, 16, 200)).toBeLessThan(0);
  });

  it('re-prices a release chain once serving shows its cost (the memo follows what it read)', () => {
    const t = timeline();
    teach(t, [8, 4]);
    const before = t.releaseChainGain([1, 2], 16, 16, 0);
    expect(t.releaseChainGain([1, 2], 16, 16, 0)).toBe(before);
    for (let i = 0; i < 5; i++) t.observeReleaseChain([1, 2], 16, 1.6);
    // The chain now ends at 1.6 against the fused model's 1.02: its early answers gain less.
    const after = t.releaseChainGain([1, 2], 16, 16, 0);
    expect(after).toBeLessThan(before);
    // Another ramp set asked in between gets its own answer, and the first one's stays right.
    expect(t.releaseChainGain([2], 16, 16, 0)).not.toBe(after);
    expect(t.releaseChainGain([1, 2], 16, 16, 0)).toBe(after);
  });

  it('prices a release chain at the cost serving showed: learned per batch size, and borrowed by a ramp set that has not run', () => {
    const t = timeline();
    expect(t.releaseChainFactor([1, 2], 16)).toBeCloseTo(t.noExitFactor([1, 2], 16), 9); // the profile, until seen
    for (let i = 0; i < 5; i++) t.observeReleaseChain([1, 2], 16, 1.4);
    expect(t.releaseChainFactor([1, 2], 16)).toBeCloseTo(1.4, 9);
    // A batch size not seen: the profile, scaled as batch 16's was.
    expect(t.releaseChainFactor([1, 2], 8)).toBeCloseTo((t.noExitFactor([1, 2], 8) * 1.4) / t.noExitFactor([1, 2], 16), 9);
    // A new ramp set (the adjuster dropped ramp 1): the host's scale, not the bare profile.
    expect(t.releaseChainFactor([2], 16)).toBeCloseTo((t.noExitFactor([2], 16) * 1.4) / t.noExitFactor([1, 2], 16), 9);
    // Once the new set has learned its own cost, that counts.
    for (let i = 0; i < 5; i++) t.observeReleaseChain([2], 16, 1.1);
    expect(t.releaseChainFactor([2], 16)).toBeCloseTo(1.1, 9);
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
      t.observe(
        [1, 2],
        undefined,
        [
          { segment: 0, rows, durationNs: 0.315 * MS * rows },
          { segment: 1, rows, durationNs: 0.42 * MS * rows },
          { segment: 2, rows, durationNs: 0.945 * MS * rows },
        ],
        S,
      );
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

describe('release on the fused model when requests queue behind a batch', () => {
  const rampsActions = (c: FakeCluster) => c.workers.get('w0')!.executed.flatMap((p) => (p.action.type === 'ramps' ? [p.action] : []));
  /** Off the chain: the plain whole model, or the fused one for a monitoring sample of batches. */
  const offChain = (a: InferAction) => a.earlyExit === undefined || a.earlyExit.fused === true;
  const nextInfer = (c: FakeCluster) => {
    const action = c.plan().find((a) => a.action.type === 'infer')!.action;
    if (action.type !== 'infer') throw new Error('not an INFER');
    return action;
  };

  it('has workers build the fused model with the chain in release mode only', () => {
    expect(rampsActions(exitCluster('release', () => [0.5, 0.25])).map((a) => a.fused)).toEqual([true]);
    expect(rampsActions(exitCluster('compact', () => [0.5, 0.25])).map((a) => a.fused)).toEqual([undefined]);
    expect(rampsActions(exitCluster('release', () => [0.5, 0.25], 1, { fusedRelease: false })).map((a) => a.fused)).toEqual([undefined]);
  });

  it('runs the chain where its early answers gain more than its extra time costs, the fused model (at its cost) where not', () => {
    const c = exitCluster('release', () => [0.5, 0.25]);
    steadyLoad(c, 200, 2, 1_000);
    c.runForMs(30);
    for (let i = 0; i < 8; i++) c.submit('ee', 10_000);
    const chain = nextInfer(c);
    expect(chain.earlyExit?.fused).toBeUndefined(); // 6 of 8 answered at 30-70 % of the run
    c.runForMs(30);
    // 384 more waiting behind a batch of 16: the chain's 5 % would cost them more than 12 exits gain
    // (enough batches off the chain, before the queue is short enough for it again, that the
    // tuner's one-in-ten sample falls among them whatever the estimates' last digits)
    const ids = Array.from({ length: 400 }, () => c.submit('ee', 10_000));
    const fused = nextInfer(c);
    expect(offChain(fused)).toBe(true);
    expect(fused.numRequests).toBe(16);
    // Planned at the fused model's cost: the whole model (16 ms) plus the heads, below the chain's.
    expect(fused.expectedDurationNs).toBeGreaterThan(0.95 * 16 * MS * 1.02);
    expect(fused.expectedDurationNs).toBeLessThan(16 * MS * timeline().noExitFactor([1, 2], 16) * 0.98);
    c.runForMs(800);
    // Every request answered once, by the full model in fused batches.
    const outcomes = ids.map((id) => c.outcomeOf(id)); // (throws on a second answer)
    expect(outcomes.every((o) => o?.status === 'OK')).toBe(true);
    expect(outcomes.filter((o) => o!.early !== true).length).toBeGreaterThanOrEqual(16);
    // Off the chain, one batch in ten runs fused (the tuner's sample), the rest the plain model.
    const batches = c.workers.get('w0')!.executed.flatMap((p) => (p.action.type === 'infer' && p.requests.some((r) => ids.includes(r.id)) ? [p.action] : []));
    const fusedRuns = batches.filter((a) => a.earlyExit?.fused).length;
    const plainRuns = batches.filter((a) => !a.earlyExit).length;
    expect(fusedRuns).toBeGreaterThanOrEqual(1);
    expect(plainRuns).toBeGreaterThanOrEqual(5 * fusedRuns);
  });

  it('learns what the chain costs in serving, and runs the fused model once it costs more than its early answers gain', () => {
    const c = exitCluster('release', () => [0.5, 0.25]);
    // This host runs the chain at twice its profile's cost (the profile says 1.07x the whole model).
    for (const worker of c.workers.values()) worker.knobs.segmentNs = (m, s, rows) => 2 * segmentNs(m, s, rows);
    steadyLoad(c, 200, 2, 1_000);
    const factor = c.scheduler.modelSpec('ee')!.exitTimeline!.releaseChainFactor([1, 2], 16);
    expect(factor).toBeGreaterThan(1.9);
    expect(factor).toBeLessThan(2.3);
    c.runForMs(30);
    for (let i = 0; i < 8; i++) c.submit('ee', 10_000);
    expect(offChain(nextInfer(c))).toBe(true); // with the profile's 1.07x, the chain (test above)
  });

  it('runs the fused model when the ramps answer nobody, however short the queue', () => {
    const c = exitCluster('release', () => [0, 0]);
    steadyLoad(c, 200, 2, 1_000);
    c.runForMs(30);
    for (let i = 0; i < 8; i++) c.submit('ee', 10_000);
    expect(offChain(nextInfer(c))).toBe(true);
  });

  it('serves more of a sustained overload than release through the chain alone, and learns the whole model from fused runs', () => {
    const served = (fusedRelease: boolean) => {
      const c = exitCluster('release', () => [0.5, 0.25], 1, { fusedRelease });
      const ids = steadyLoad(c, 1_000, 0.5, 100_000); // 2 requests a ms: twice what one worker serves
      const ok = ids.filter((r) => c.outcomeOf(r.id)?.status === 'OK').length;
      const snapshot = c.scheduler.snapshot(c.clock.nowNs()) as { workers: { estimatesMs: Record<string, Record<string, number>> }[] };
      return { ok, batch16Ms: snapshot.workers[0]!.estimatesMs.ee!['16']! };
    };
    const fused = served(true);
    const chain = served(false);
    expect(fused.ok).toBeGreaterThan(1.03 * chain.ok);
    // Fused runs are divided by the fused factor: the learned whole-model bound matches what chain runs teach.
    // (deterministic: the virtual clock; without the division the estimate reads 5 % above the chain's)
    expect(fused.batch16Ms).toBeGreaterThan(0.97 * chain.batch16Ms);
    expect(fused.batch16Ms).toBeLessThan(1.04 * chain.batch16Ms);
  });
});

describe('preparing chains for a new ramp set', () => {
  it('plans a RAMPS action on each holder and runs the model whole until the chain is ready', () => {
    const spec = modelSpec('ee');
    spec.exitTimeline = new ExitTimeline(profile, costs);
    spec.loadedRampSet = '1,2';
    spec.earlyExit = { mode: 'compact', ramps: RAMPS, monitorFraction: 0.1 };
    // a 1 ms RAMPS estimate lets an INFER be planned right behind it, before its result is known
    const c = new FakeCluster([spec], { defaultRampsNs: 1 * MS, defaultSmokeRampsNs: 1 * MS });
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

  it('builds one holder at a time: with a full warm-up before service, a smoke run during service', () => {
    const spec = modelSpec('ee');
    spec.exitTimeline = new ExitTimeline(profile, costs);
    spec.earlyExit = { mode: 'compact', ramps: RAMPS, monitorFraction: 0.1 };
    const c = new FakeCluster([spec]);
    for (const id of ['w0', 'w1']) c.addWorker(id, 10_000, { inferNs: (_m, b) => b * MS });
    c.scheduler.pin('ee'); // loaded on both
    c.runForMs(100);
    // In turn: the other holder keeps serving the whole model meanwhile.
    const [a, b] = ['w0', 'w1'].map((id) => {
      const w = c.workers.get(id)!;
      return w.spans[w.executed.findIndex((p) => p.action.type === 'ramps')]!;
    });
    expect(a!.endNs <= b!.startNs || b!.endNs <= a!.startNs).toBe(true);
    const rampsOf = (id: string) => c.workers.get(id)!.executed.flatMap((p) => (p.action.type === 'ramps' ? [p.action] : []));
    const holders = ['w0', 'w1'];
    for (const id of holders) expect(rampsOf(id).map((a) => a.warmup)).toEqual(['full']);
    steadyLoad(c, 100, 1, 1_000); // every holder serves
    const served = holders.filter((id) => c.workers.get(id)!.executed.some((p) => p.action.type === 'infer'));
    expect(served).toEqual(holders);
    // A ramp change: the holders build in turn, each with a smoke run.
    c.scheduler.setExitConfig('ee', { ...spec.earlyExit, ramps: [{ siteId: 2, threshold: 0.9 }] });
    c.submit('ee', 10_000);
    const first = c.plan().filter((a) => a.action.type === 'ramps');
    expect(first.length).toBe(1);
    expect(first[0]!.action.type === 'ramps' && first[0]!.action.warmup).toBe('smoke');
    c.runForMs(100);
    for (const id of holders) expect(rampsOf(id).at(-1)).toMatchObject({ siteIds: [2], warmup: 'smoke' });
  });

  it("prices a first build by the worker's own run times: its warm-up runs every batch size twice", () => {
    const rampsMs = (perRowMs: number, loadedRampSet?: string): number => {
      const spec = modelSpec('ee');
      spec.exitTimeline = new ExitTimeline(profile, costs);
      spec.earlyExit = { mode: 'release', ramps: RAMPS, monitorFraction: 0.1 };
      if (loadedRampSet !== undefined) spec.loadedRampSet = loadedRampSet;
      const c = new FakeCluster([spec], { fusedRelease: true });
      c.addWorker('w0', 10_000, { inferNs: (_m, b) => b * perRowMs * MS });
      c.scheduler.pin('ee');
      c.runForMs(50);
      const ramps = c.workers.get('w0')!.executed.find((p) => p.action.type === 'ramps')!;
      return ramps.action.expectedDurationNs / MS;
    };
    // 1 ms a row: two runs at each of batches 1..16 (272 ms), at the chain's and the fused model's
    // cost (1.07 + 1.02), plus 100 ms to set up each: 768 ms. 10 ms a row: ten times the runs. A
    // tiny model keeps the 300 ms floor.
    const timelineOf = new ExitTimeline(profile, costs);
    const factor = timelineOf.noExitFactor([1, 2], 16) + timelineOf.fusedFactor([1, 2], 16);
    expect(rampsMs(1)).toBeCloseTo(272 * factor + 200, 0);
    expect(rampsMs(10)).toBeCloseTo(2720 * factor + 200, -1);
    expect(rampsMs(0.05)).toBe(300);
    // The package's chain came with the LOAD: only the fused model is built.
    expect(rampsMs(10, '1,2')).toBeCloseTo(2720 * timelineOf.fusedFactor([1, 2], 16) + 100, -1);
  });
});
