/**
 * The controller's early-exit decisions, apart from its sockets: one accuracy monitor and
 * threshold tuner per early-exit model served with ramps (exit-monitor.ts), what each batch's
 * feedback changes in the planner's exit configuration (thresholds, active ramps, the exit rates
 * the compact timeline predicts from, and how many exited rows still run to the end), and how
 * `configure` starts every model over from its package.
 *
 * Pure: no clock, no sockets, no logging. It returns the changes it made so that the adapter can
 * log them and write them to thresholds.csv.
 *
 * The monitoring fraction: in compact mode a 10 % sample of exited rows runs to the end for
 * accuracy monitoring (MONITOR_FRACTION), but until the monitor's window holds COLD_START_SAMPLES
 * every exited row does, so that the first re-tunes see every answer labelled. With the 10 %
 * sample from the start, the first re-tunes saw few exits, each weighted 10x, and switched every
 * ramp off for about 4 s of each cold start. Every exit is labelled again while the monitor
 * suspects a drift (its confidences moved): a 10 % sample is too thin to see a shift in time; and
 * while the window's exits are too few effective observations to certify the budget
 * (model-spec.ts, MIN_EFFECTIVE_EXITS).
 */
import type { ModelEntry } from '../shared/model-manifest.js';
import type { EarlyExitPlan, ExitFeedback, ExitMode } from '../shared/protocol.js';
import type { ExitStats } from '../shared/status-schema.js';
import type { ExitMonitor, RampSetChange, SearchRequest, ThresholdChange } from './exit-monitor.js';
import { COLD_START_SAMPLES, exitMonitorFor, MIN_EFFECTIVE_EXITS, modelSpecFromEntry, MONITOR_FRACTION } from './model-spec.js';
import type { TunerResult } from '../shared/threshold-tuner.js';
import type { ExitConfig, ModelSpec } from './cluster-state.js';
import type { ExitTimeline } from './exit-timeline.js';

/** What ExitControl needs of the planner: read and set a model's exit configuration. */
export interface ExitPlanner {
  modelSpec(modelName: string): ModelSpec | undefined;
  setExitConfig(modelName: string, config: ExitConfig | undefined): void;
  /** Starts a model's exit timeline over (its package's, with the ramp set its workers load first). */
  resetExitTimeline(modelName: string, timeline: ExitTimeline, loadedRampSet: string): void;
}

export interface ExitControlOptions {
  exitMode: ExitMode | 'off';
  /** Thresholds tuned online, or the packages' own kept (the monitor still observes). */
  thresholds: 'online' | 'static';
  /** Whether the monitor may change which ramps are active. */
  adjustRamps: boolean;
  /** The share of the accuracy budget the tuner may spend (ExitMonitorOptions.budgetShare); absent: its default. */
  budgetShare?: number;
  exactBatches: boolean;
  /**
   * The monitors ask for their searches instead of running them (ExitMonitorOptions.deferSearch):
   * the adapter runs each `ExitChanges.search` and hands the results back (`completeSearch`).
   */
  deferSearch?: boolean;
}

/** What one batch's feedback (or a search's results) changed, for the adapter to log; and a search to run, when deferred. */
export interface ExitChanges {
  thresholds?: ThresholdChange;
  ramps?: RampSetChange;
  search?: SearchRequest;
}

export class ExitControl {
  private readonly monitors = new Map<string, ExitMonitor>();
  private options: ExitControlOptions;

  constructor(
    private readonly planner: ExitPlanner,
    private readonly models: ReadonlyMap<string, ModelEntry>,
    options: ExitControlOptions,
  ) {
    this.options = { ...options };
    for (const entry of models.values()) this.watch(entry);
  }

  get exitMode(): ExitMode | 'off' {
    return this.options.exitMode;
  }

  get thresholds(): 'online' | 'static' {
    return this.options.thresholds;
  }

  get adjustRamps(): boolean {
    return this.options.adjustRamps;
  }

  set adjustRamps(on: boolean) {
    this.options.adjustRamps = on;
  }

  /**
   * Feeds a finished INFER's ramp feedback to the model's monitor and applies what it decides:
   * re-tuned thresholds, a changed ramp set (at most once per `adjustEvery` samples; each change
   * costs every holder a planned RAMPS action), the exit rates, the monitoring fraction.
   */
  observe(model: string, plan: EarlyExitPlan, feedback: ExitFeedback): ExitChanges {
    const monitor = this.monitors.get(model);
    const config = this.planner.modelSpec(model)?.earlyExit;
    if (!monitor || !config) return {};
    const thresholds = monitor.observe(plan, feedback);
    const ramps = this.options.adjustRamps ? monitor.maybeAdjust() : undefined;
    return this.applied(monitor, { ...(thresholds ? { thresholds } : {}), ...(ramps ? { ramps } : {}) });
  }

  /**
   * The results of a deferred search (`ExitChanges.search`), in the order of its jobs, or
   * undefined when it failed: applied as `observe` applies what it decides. A search of a monitor
   * that `reset` replaced meanwhile changes nothing.
   */
  completeSearch(model: string, id: number, results: TunerResult[] | undefined): ExitChanges {
    const monitor = this.monitors.get(model);
    if (!monitor) return {};
    return this.applied(monitor, monitor.completeSearch(id, results));
  }

  /** Carries a monitor's decisions into the planner's exit configuration; returns them with the search it asks for, if any. */
  private applied(monitor: ExitMonitor, changes: ExitChanges): ExitChanges {
    const model = monitor.model;
    const config = this.planner.modelSpec(model)?.earlyExit;
    const search = monitor.takeSearchRequest();
    const result = search ? { ...changes, search } : changes;
    if (!config) return result;
    const current = monitor.currentThresholds;
    const active = monitor.activeSiteIds;
    const monitorFraction = monitoringFraction(config.mode, monitor.numSamples, monitor.suspectsDrift, monitor.effectiveExitSamples);
    // Most results change nothing the planner reads (ramps, thresholds, monitoring fraction): the
    // config is left as it is then (the exit rates it carries only seed a new configuration's
    // evidence), which spares a new config, its key and a scan of the window per result.
    const same =
      monitorFraction === config.monitorFraction &&
      config.ramps.length === active.length &&
      config.ramps.every((r, i) => r.siteId === active[i] && r.threshold === current[i]);
    if (!same)
      this.planner.setExitConfig(model, {
        ...config,
        ramps: active.map((siteId, i) => ({ siteId, threshold: current[i]! })),
        exitRates: monitor.exitRates(),
        exitRatesBasis: monitor.numSamples,
        monitorFraction,
      });
    return result;
  }

  /** A batch of an early-exit model that ran whole (release off the chain, or before a ramp set was ready): every answer is full. */
  countFullAnswers(model: string, numAnswers: number): void {
    this.monitors.get(model)?.countFullAnswers(numAnswers);
  }

  /** A new exit mode, threshold tuning or budget share: every early-exit model starts over from its package. */
  reset(changes: { exitMode?: ExitMode | 'off'; thresholds?: 'online' | 'static'; budgetShare?: number }): void {
    if (changes.exitMode !== undefined) this.options.exitMode = changes.exitMode;
    if (changes.thresholds !== undefined) this.options.thresholds = changes.thresholds;
    if (changes.budgetShare !== undefined) this.options.budgetShare = changes.budgetShare;
    for (const entry of this.models.values()) {
      const fresh = modelSpecFromEntry(entry, this.options.exitMode, this.options.exactBatches);
      if (fresh.earlyExit && entry.manifest.earlyExit) this.planner.resetExitTimeline(fresh.name, fresh.exitTimeline!, fresh.loadedRampSet!);
      this.planner.setExitConfig(fresh.name, fresh.earlyExit);
      this.monitors.delete(fresh.name);
      this.watch(entry);
    }
  }

  /**
   * Fixes a model's thresholds (an oracle schedule, a user's choice): the monitor keeps observing
   * but never re-tunes. Returns the change, or why not.
   */
  fix(model: string, thresholds: readonly number[]): ThresholdChange | string {
    const monitor = this.monitors.get(model);
    const config = this.planner.modelSpec(model)?.earlyExit;
    if (!monitor || !config) return `fixedThresholds: '${model}' serves no ramps (an early-exit package, with exits on)`;
    if (thresholds.length !== config.ramps.length) return `fixedThresholds: '${model}' has ${config.ramps.length} active ramps, not ${thresholds.length}`;
    const change = monitor.fix(thresholds);
    this.planner.setExitConfig(model, {
      ...config,
      ramps: config.ramps.map((r, i) => ({ siteId: r.siteId, threshold: thresholds[i]! })),
      exitRates: monitor.exitRates(),
      exitRatesBasis: monitor.numSamples,
    });
    return change;
  }

  stats(): ExitStats[] {
    return [...this.monitors.values()].map((m) => {
      const config = this.planner.modelSpec(m.model)?.earlyExit;
      return { ...m.stats(), ...(config?.mode === 'compact' ? { labelledShare: config.monitorFraction } : {}) };
    });
  }

  /** Starts monitoring a model if it is served with ramps under the current mode. */
  private watch(entry: ModelEntry): void {
    const spec = this.planner.modelSpec(entry.manifest.name);
    if (spec?.earlyExit && entry.manifest.earlyExit) {
      this.monitors.set(
        spec.name,
        exitMonitorFor(
          entry.manifest.earlyExit,
          spec.name,
          spec.earlyExit.ramps,
          this.options.thresholds,
          this.options.budgetShare,
          this.options.deferSearch ? { deferSearch: true } : {},
        ),
      );
    }
  }
}

/**
 * The share of exited rows that run to the end in compact mode: all of them until the monitor's
 * window is full, while it suspects a drift, and while its exits are too few effective
 * observations to certify the budget (MIN_EFFECTIVE_EXITS); MONITOR_FRACTION otherwise.
 */
export function monitoringFraction(mode: ExitMode, numSamples: number, suspectsDrift = false, effectiveExits = Number.POSITIVE_INFINITY): number {
  const thin = numSamples < COLD_START_SAMPLES || suspectsDrift || effectiveExits < MIN_EFFECTIVE_EXITS;
  return mode === 'compact' && thin ? 1 : MONITOR_FRACTION;
}
