/**
 * From a model package to what the controller plans and tunes with: the scheduler's `ModelSpec`
 * (batch sizes, shapes, memory, the early-exit configuration it starts with) and the exit
 * monitor that re-tunes a package's ramps in service.
 */
import { timedBatchSizes } from '../shared/batch-size-sampling.js';
import { runnableBatchSizes, type ModelEntry } from '../shared/model-manifest.js';
import type { EarlyExitSection } from '../shared/early-exit-manifest.js';
import type { ExitMode } from '../shared/protocol.js';
import type { ModelSpec } from './cluster-state.js';
import { DEFAULT_EXIT_MONITOR_OPTIONS, ExitMonitor, type ExitMonitorOptions } from './exit-monitor.js';
import { ExitTimeline } from './exit-timeline.js';

/**
 * The batch sizes the planner forms. With `exactBatches`, a model whose batch dimension is
 * dynamic runs every size up to its largest profiled one, so a batch has exactly as many rows as
 * requests: on CPUs a row costs about the same at any batch size, so padding 13 requests to 16
 * rows wastes 19 % of the run (10.5 % of all rows at x177 on the Azure trace). Workers profile
 * every size at LOAD. Without it (as Clockwork on GPUs, whose kernels are built per size), batches
 * pad up to the package's profiled sizes.
 */
export function plannedBatchSizes(entry: ModelEntry, exactBatches: boolean): number[] {
  return exactBatches ? runnableBatchSizes(entry.manifest) : entry.manifest.batchSizes;
}

/** Compact mode: the share of exited requests that still run to the end, for accuracy monitoring. */
export const MONITOR_FRACTION = 0.1;
/**
 * Compact mode runs every exited request to the end until the exit monitor's window holds this
 * many samples (a window's worth), so its first re-tunes see every answer labelled: at 10 %, a
 * window of 300 samples took ~1,700 requests, its exit observations were few and weighted 10×,
 * and the first re-tunes switched every ramp off for ~4 s of each cold start. Until then compact
 * batches run as long as release ones (exits are still answered at their ramp).
 */
export const COLD_START_SAMPLES = DEFAULT_EXIT_MONITOR_OPTIONS.windowSize;
/**
 * After the cold start too, compact mode labels every exit while the monitor's window holds fewer
 * than this many effective exit observations (Kish's size: ten exits of weight 10 are ten, not a
 * hundred): below ~300, even no disagreement at all cannot bound the rate within a 1 % budget at
 * the exit shares served (Wilson, 95 %), so the tuner switches ramps off for want of evidence.
 * NOTE: the 10 % sample alone left the window thin for thousands of requests after each cold start
 * (512 exits of weight 1 joined by a few dozen of weight 10: Kish's size fell to ~170) and under
 * a drift that makes exits rare (bench:tuner's noise drift: 30 % of exits labelled, 40 % answered
 * early, a worst replay at 99.00 % and a tenth at 96.9 %; labelling until 300: 82 % labelled, 50 %
 * answered early, 99.49 % and 99.0 %). Labelling a half or a quarter instead, or stepping down from
 * the cold start, mixed weights and left the budget in some replays (98.75-99.15 %).
 */
export const MIN_EFFECTIVE_EXITS = 300;

export function modelSpecFromEntry(entry: ModelEntry, exitMode: ExitMode | 'off' = 'off', exactBatches = true): ModelSpec {
  const sim = entry.manifest.simulated;
  const spec: ModelSpec = {
    name: entry.manifest.name,
    inputs: entry.manifest.inputs,
    outputs: entry.manifest.outputs,
    batchSizes: plannedBatchSizes(entry, exactBatches),
    ...(entry.manifest.sequence ? { sequenceBuckets: entry.manifest.sequence.buckets } : {}),
    weightsBytes: entry.fileBytes,
    nominalBatch1Ns: sim ? (sim.baseUs + sim.perItemUs) * 1000 : 0,
  };
  const ee = entry.manifest.earlyExit;
  if (ee) spec.loadedRampSet = ee.chosenRamps.join(',');
  if (ee) spec.loadEstimateNs = loadEstimateNs(ee.profile.wholeMs, spec.batchSizes);
  if (ee && exitMode !== 'off') {
    // The package's initial choice; the tuner moves the thresholds from there.
    // Compact mode starts fully monitored (see COLD_START_SAMPLES).
    spec.earlyExit = {
      mode: exitMode,
      ramps: ee.chosenRamps.map((siteId) => ({ siteId, threshold: ee.initialThresholds[siteId]! })),
      monitorFraction: exitMode === 'compact' ? 1 : MONITOR_FRACTION,
    };
    spec.exitTimeline = ExitTimeline.fromSection(ee);
  }
  return spec;
}

/** A monitor for a package's active ramps, with latencies from its profile at the reference batch size. */
export function exitMonitorFor(
  ee: EarlyExitSection,
  model: string,
  ramps: { siteId: number; threshold: number }[],
  tuning: 'online' | 'static' = 'online',
  /** See ExitMonitorOptions.budgetShare; absent: its default. */
  budgetShare?: number,
  /** Any other monitor options (bench/tuner-replay.ts compares tuner settings offline). */
  overrides: Partial<ExitMonitorOptions> = {},
): ExitMonitor {
  const ref = String(ee.profile.referenceBatchSize);
  const tunerRamps = ramps.map((r) => ({
    siteId: r.siteId,
    upToMs: ee.profile.siteUpToMs[r.siteId]![ref]!,
    costMs: ee.ramps.find((x) => x.siteId === r.siteId)!.costMs[ref]!,
  }));
  const candidates = ee.ramps.map((r) => ({
    siteId: r.siteId,
    upToMs: ee.profile.siteUpToMs[r.siteId]![ref]!,
    costMs: r.costMs[ref]!,
    priorExitFraction: r.validation.exitFraction,
    priorThreshold: r.validation.threshold,
  }));
  const options = {
    maxRamps: ee.selection.maxRamps,
    overheadBudget: ee.selection.overheadBudget,
    budget: ee.selection.accuracyBudget,
    tuning,
    ...(budgetShare !== undefined ? { budgetShare } : {}),
    ...overrides,
  };
  return new ExitMonitor(
    model,
    tunerRamps,
    ramps.map((r) => r.threshold),
    ee.profile.wholeMs[ref]!,
    options,
    candidates,
  );
}

/** Session set-up and chain building, on top of the profiling runs. */
const LOAD_SETUP_NS = 2e9;
/** Runs a LOAD makes per batch size: up to 3 warm-ups and at least 3 timed (worker/inference-thread.ts). */
const LOAD_RUNS_PER_SIZE = 6;

/**
 * A LOAD's duration from the package profile: every batch size it will profile, run a few times
 * (whole-model times interpolated between the profiled sizes), plus set-up. fmnist-resnet: ~2.9 s;
 * fmnist-resnet-112: ~25 s.
 */
export function loadEstimateNs(wholeMs: Record<string, number>, batchSizes: readonly number[]): number {
  const curve = Object.entries(wholeMs)
    .map(([b, ms]) => [Number(b), ms] as const)
    .sort((a, b) => a[0] - b[0]);
  const at = (b: number): number => {
    const upper = curve.findIndex(([size]) => size >= b);
    if (upper < 0) return (curve.at(-1)![1] * b) / curve.at(-1)![0];
    if (upper === 0) return (curve[0]![1] * b) / curve[0]![0];
    const [b0, v0] = curve[upper - 1]!;
    const [b1, v1] = curve[upper]!;
    return v0 + ((v1 - v0) * (b - b0)) / (b1 - b0);
  };
  // Sizes too slow to time are interpolated by the worker, not run (shared/batch-size-sampling.ts).
  const profileMs = timedBatchSizes(batchSizes, (b) => at(b) * 1e6).reduce((sum, b) => sum + at(b), 0);
  return LOAD_SETUP_NS + LOAD_RUNS_PER_SIZE * profileMs * 1e6;
}
