import { describe, expect, it } from 'vitest';
import { ExitControl, monitoringFraction } from '../../controller/exit-control.js';
import { COLD_START_SAMPLES, MIN_EFFECTIVE_EXITS, MONITOR_FRACTION, modelSpecFromEntry } from '../../controller/model-spec.js';
import { Scheduler } from '../../controller/scheduler.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import type { EarlyExitPlan, ExitFeedback } from '../../shared/protocol.js';
import { tuneThresholds } from '../../shared/threshold-tuner.js';

const MODEL = 'fmnist-resnet';
const entry = loadModelEntry('models', MODEL);
const models = new Map([[MODEL, entry]]);

function setUp(exitMode: 'compact' | 'release' | 'off', thresholds: 'online' | 'static' = 'online') {
  const core = new Scheduler([modelSpecFromEntry(entry, exitMode)]);
  const control = new ExitControl(core, models, { exitMode, thresholds, adjustRamps: true, exactBatches: true });
  return { core, control };
}

/** A batch's feedback: every ramp confident and agreeing with the full model on every row. */
function agreeingBatch(plan: EarlyExitPlan, numRows: number): ExitFeedback {
  const finals = Array.from({ length: numRows }, (_, row) => row % 10);
  return {
    siteIds: plan.ramps.map((r) => r.siteId),
    confidences: plan.ramps.map(() => finals.map(() => 0.999)),
    predictions: plan.ramps.map(() => [...finals]),
    finalPredictions: finals,
  };
}

const planOf = (core: Scheduler): EarlyExitPlan => {
  const config = core.modelSpec(MODEL)!.earlyExit!;
  return { mode: config.mode, ramps: config.ramps, keepRows: [] };
};

describe("the controller's early-exit decisions (exit-control.ts)", () => {
  it("runs every exited row to the end until the monitor's window is full, then the 10 % sample", () => {
    const { core, control } = setUp('compact');
    expect(monitoringFraction('compact', 0)).toBe(1);
    expect(monitoringFraction('release', 0)).toBe(MONITOR_FRACTION);
    expect(monitoringFraction('compact', 10 * COLD_START_SAMPLES, true)).toBe(1); // a suspected drift: label every exit again
    expect(monitoringFraction('compact', 10 * COLD_START_SAMPLES, false)).toBe(MONITOR_FRACTION);
    // too few effective exit observations to certify the budget: every exit is labelled until there are
    expect(monitoringFraction('compact', 10 * COLD_START_SAMPLES, false, MIN_EFFECTIVE_EXITS - 1)).toBe(1);
    expect(monitoringFraction('compact', 10 * COLD_START_SAMPLES, false, MIN_EFFECTIVE_EXITS)).toBe(MONITOR_FRACTION);
    expect(monitoringFraction('release', 10 * COLD_START_SAMPLES, false, 0)).toBe(MONITOR_FRACTION);
    control.observe(MODEL, planOf(core), agreeingBatch(planOf(core), 16));
    expect(core.modelSpec(MODEL)!.earlyExit!.monitorFraction).toBe(1);
    expect(control.stats()[0]!.labelledShare).toBe(1);
    for (let seen = 16; seen < COLD_START_SAMPLES; seen += 16) control.observe(MODEL, planOf(core), agreeingBatch(planOf(core), 16));
    expect(core.modelSpec(MODEL)!.earlyExit!.monitorFraction).toBe(MONITOR_FRACTION);
    const stats = control.stats();
    expect(stats).toHaveLength(1);
    expect(stats[0]!.numSamples).toBeGreaterThanOrEqual(COLD_START_SAMPLES);
    expect(stats[0]!.labelledShare).toBe(MONITOR_FRACTION); // what `escapement status` shows
    expect(stats[0]!.effectiveExits).toBeGreaterThan(0);
  });

  it('applies what the tuner decides to the planner and returns it for the log', () => {
    const { core, control } = setUp('release');
    const before = core.modelSpec(MODEL)!.earlyExit!.ramps.map((r) => r.threshold);
    let changed;
    for (let i = 0; i < 80 && !changed; i++) changed = control.observe(MODEL, planOf(core), agreeingBatch(planOf(core), 16)).thresholds;
    expect(changed).toBeDefined();
    // the tuner re-tuned, and the planner plans with what it chose
    expect(changed!.after).not.toEqual(before);
    expect(core.modelSpec(MODEL)!.earlyExit!.ramps.map((r) => r.threshold)).toEqual(changed!.after);
    expect(core.modelSpec(MODEL)!.earlyExit!.exitRatesBasis).toBeGreaterThan(0);
  });

  it("keeps the package's thresholds with static tuning", () => {
    const { core, control } = setUp('release', 'static');
    const before = core.modelSpec(MODEL)!.earlyExit!.ramps.map((r) => r.threshold);
    for (let i = 0; i < 80; i++) expect(control.observe(MODEL, planOf(core), agreeingBatch(planOf(core), 16)).thresholds).toBeUndefined();
    expect(core.modelSpec(MODEL)!.earlyExit!.ramps.map((r) => r.threshold)).toEqual(before);
  });

  it('fixes thresholds only for a model served with ramps and with one per active ramp', () => {
    const { core, control } = setUp('release');
    const n = core.modelSpec(MODEL)!.earlyExit!.ramps.length;
    expect(control.fix(MODEL, [0.5])).toMatch(new RegExp(`has ${n} active ramps, not 1`));
    const change = control.fix(
      MODEL,
      Array.from({ length: n }, () => 0.97),
    );
    expect(typeof change).toBe('object');
    expect(core.modelSpec(MODEL)!.earlyExit!.ramps.every((r) => r.threshold === 0.97)).toBe(true);
    expect(setUp('off').control.fix(MODEL, [0.9])).toMatch(/serves no ramps/);
  });

  it('starts every model over from its package on a new exit mode, and stops monitoring with exits off', () => {
    const { core, control } = setUp('release');
    control.fix(
      MODEL,
      core.modelSpec(MODEL)!.earlyExit!.ramps.map(() => 0.5),
    );
    control.reset({ exitMode: 'compact' });
    expect(control.exitMode).toBe('compact');
    expect(core.modelSpec(MODEL)!.earlyExit!.mode).toBe('compact');
    const ee = entry.manifest.earlyExit!;
    expect(core.modelSpec(MODEL)!.earlyExit!.ramps.map((r) => r.threshold)).toEqual(ee.chosenRamps.map((s) => ee.initialThresholds[s]));
    expect(control.stats()[0]!.numSamples).toBe(0);
    control.reset({ exitMode: 'off' });
    expect(core.modelSpec(MODEL)!.earlyExit).toBeUndefined();
    expect(control.stats()).toEqual([]);
  });

  it('with deferred searches, returns the search to run and applies its results when they come back', () => {
    const core = new Scheduler([modelSpecFromEntry(entry, 'release')]);
    const control = new ExitControl(core, models, { exitMode: 'release', thresholds: 'online', adjustRamps: true, exactBatches: true, deferSearch: true });
    const before = core.modelSpec(MODEL)!.earlyExit!.ramps.map((r) => r.threshold);
    let changes: ReturnType<ExitControl['observe']> = {};
    for (let i = 0; i < 80 && !changes.search; i++) changes = control.observe(MODEL, planOf(core), agreeingBatch(planOf(core), 16));
    const search = changes.search!;
    expect(search).toBeDefined();
    expect(changes.thresholds).toBeUndefined(); // nothing applied before the search is back
    expect(core.modelSpec(MODEL)!.earlyExit!.ramps.map((r) => r.threshold)).toEqual(before);
    const results = search.jobs.map((j) => tuneThresholds(j.samples, j.ramps, j.wholeMs, j.overrides));
    // a reset monitor no longer waits on it: its results change nothing
    const { control: other } = setUp('release');
    expect(other.completeSearch(MODEL, search.id, results)).toEqual({});
    const done = control.completeSearch(MODEL, search.id, results);
    expect(done.thresholds!.after).not.toEqual(before);
    expect(core.modelSpec(MODEL)!.earlyExit!.ramps.map((r) => r.threshold)).toEqual(done.thresholds!.after);
  });
});
