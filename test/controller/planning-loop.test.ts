import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS, PlanningLoop, type LoopTimers } from '../../controller/planning-loop.js';

/** Timers that only run when told: `soon` callbacks on flush, `after` ones on fire. */
function fakeTimers() {
  const soon: (() => void)[] = [];
  const after = new Map<number, { fn: () => void; delayMs: number }>();
  let next = 1;
  const timers: LoopTimers = {
    soon: (fn) => void soon.push(fn),
    after: (fn, delayMs) => {
      after.set(next, { fn, delayMs });
      return next++;
    },
    cancel: (handle) => void after.delete(handle as number),
  };
  return {
    timers,
    after,
    flush: () => soon.splice(0).forEach((fn) => fn()),
    fire: (handle: number) => after.get(handle)!.fn(),
  };
}

function setUp(wakeAfterNs: number | undefined) {
  const t = fakeTimers();
  let nowNs = 1_000_000_000;
  const plans: number[] = [];
  const loop = new PlanningLoop({
    plan: (at) => void plans.push(at),
    nextWakeupNs: (at) => (wakeAfterNs === undefined ? undefined : at + wakeAfterNs),
    nowNs: () => nowNs,
    guarded: (_what, handler) => handler(),
    timers: t.timers,
  });
  return { loop, plans, t, advanceMs: (ms: number) => (nowNs += ms * 1e6) };
}

describe('when the controller plans (planning-loop.ts)', () => {
  it('plans once after the current turn however many changes ask for it', () => {
    const { loop, plans, t } = setUp(undefined);
    loop.soon();
    loop.soon();
    loop.soon();
    expect(plans).toHaveLength(0);
    t.flush();
    expect(plans).toHaveLength(1);
    loop.soon();
    t.flush();
    expect(plans).toHaveLength(2);
  });

  it("wakes at the core's next wake-up, in whole ms and at least 1, replacing the timer each plan", () => {
    const { loop, plans, t, advanceMs } = setUp(2_700_000); // 2.7 ms
    loop.runNow();
    expect([...t.after.values()].map((x) => x.delayMs)).toEqual([2]);
    const [handle] = [...t.after.keys()];
    advanceMs(2);
    t.fire(handle!);
    expect(plans).toHaveLength(2);
    expect(t.after.size).toBe(1); // the fired one replaced, not added to
    const tiny = setUp(10_000); // 0.01 ms
    tiny.loop.runNow();
    expect([...tiny.t.after.values()][0]!.delayMs).toBe(1);
  });

  it('never asks a timer for more than Node keeps, and sets none without a wake-up', () => {
    const far = setUp(30 * 24 * 3600 * 1e9); // 30 days
    far.loop.runNow();
    expect([...far.t.after.values()][0]!.delayMs).toBe(MAX_TIMER_MS);
    const none = setUp(undefined);
    none.loop.runNow();
    expect(none.t.after.size).toBe(0);
  });

  it('plans nothing once closed, and cancels its timer', () => {
    const { loop, plans, t } = setUp(5_000_000);
    loop.runNow();
    loop.soon();
    loop.close();
    t.flush();
    expect(plans).toHaveLength(1);
    expect(t.after.size).toBe(0);
    loop.runNow();
    expect(plans).toHaveLength(1);
  });
});
