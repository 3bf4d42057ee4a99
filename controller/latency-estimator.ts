/**
 * Duration estimates per (model, worker, batch size): a sliding window of recent measurements,
 * read at two percentiles: a high one (`estimateNs`, the bound a deadline check relies on) and
 * the median (`expectedNs`, what the worker's timeline is predicted with).
 *
 * Why two: on shared CPUs the run-time distribution has a long tail (fmnist batch 8 under load:
 * p50 11 ms, p95 19 ms, p99 25 ms). A timeline that chains p95s predicts every worker busy far
 * longer than it is, and the planner then drops requests that would have made it. The median
 * predicts when a worker frees up; the tail is paid once, on the action whose deadline is checked.
 *
 * Clockwork keeps 10 samples at p99, which is the running max: one outlier inflates the estimate
 * for the next 10 runs. CPU inference is noisier than a GPU's (rare 2–17 ms hiccups at a 0.1–1 %
 * rate), so the window is longer and the percentile slightly lower; the planner's buffer absorbs
 * what the percentile leaves out. The offline profile from LOAD seeds the window, so estimates
 * exist before the first real INFER.
 *
 * Drift: a batch size that has not run since the profile borrows what the others learned. Each
 * measurement updates a per-(model, worker) ratio of measured to profiled time (EWMA), and a
 * size with no measurement of its own is estimated as profile × ratio. A worker that turns out
 * 10x slower than profiled is then predicted slower at every batch size after one result.
 *
 * Age: a window keeps its last 100 samples, but none older than `maxSampleAgeNs` (10 s), so that
 * a batch size that runs rarely (a burst's large batches) is not predicted from the last burst's
 * contention for as long as it takes to run 100 more; once its samples are gone it is back to
 * profile × drift.
 */
export interface EstimatorConfig {
  /** Samples kept per key. Default 100: long enough that one outlier barely moves p95. */
  windowSize: number;
  /** Percentile read for deadline checks (`estimateNs`), in [0, 1]. Default 0.95. */
  percentile: number;
  /** Percentile read for timelines (`expectedNs`), in [0, 1]. Default 0.5. */
  expectedPercentile: number;
  /**
   * Step of the per-worker shift tracker (0: off). Default 0.03: ten runs in a row slower than
   * predicted raise that worker's estimates by ~34 %.
   */
  shiftStep: number;
  /**
   * The worker's recent runs, every model and batch size pooled: how many (measured / predicted
   * median) ratios are kept. The bound of any key is at least its median times this pool's
   * `percentile`, so a batch size that rarely runs (a burst's big batches, whose own windows hold
   * quiet-time samples) still gets the tail the worker shows now. Absent or 0: off (the default).
   * NOTE: measured on bursty arrivals (gamma, CV 10, 50 % load, fmnist-resnet, 2 workers): with 64
   * runs pooled, 0.2-1.2 % of admitted requests missed, against 0.5-1.6 % without, but SLO
   * attainment fell from 41-59 % to 29-43 % (more rejected at arrival); so it is a choice
   * (controller --tail-pool-runs), not the default.
   */
  tailWindow?: number;
  /**
   * Measurements older than this (ns) stop counting: each new result of a (model, worker) pair
   * drops its older samples from every batch size's window. A batch size left with none goes back
   * to its LOAD profile times the pair's drift, like a size that never ran; one without a profile
   * keeps its newest sample. Absent or 0: off (samples leave by count only). The default config
   * has DEFAULT_MAX_SAMPLE_AGE_NS.
   */
  maxSampleAgeNs?: number;
}

/**
 * Default age limit of a measurement. NOTE: the windows are 100 samples, so a batch size that
 * runs often renews its window within a second or two and never reaches this age; only the rare
 * ones do (a burst's large batches, a saturating phase's batches of 16). Those kept the last
 * overload's runs until the next one, and the planner then predicted a burst's batches at the
 * previous burst's contention (p11 of issue #16's notes: after a saturating phase, SLO at 50 %
 * rose from 97.8 to 99.7 % only over three 3 s phases).
 */
export const DEFAULT_MAX_SAMPLE_AGE_NS = 10e9;

export const DEFAULT_ESTIMATOR_CONFIG: EstimatorConfig = {
  windowSize: 100,
  percentile: 0.95,
  expectedPercentile: 0.5,
  shiftStep: 0.03,
  maxSampleAgeNs: DEFAULT_MAX_SAMPLE_AGE_NS,
};

/** `ageAll` sweeps every pair at most this many times per age limit. */
const SWEEPS_PER_AGE = 10;

/** Profile samples a seeded window starts with: four at the median, one at the p99. */
const SEED_MEDIANS = 4;

/** The pooled tail needs this many ratios before it counts. */
const MIN_TAIL_SAMPLES = 16;

/** Weight of the newest measured/profiled ratio in the drift EWMA. */
const DRIFT_ALPHA = 0.2;
/** Drift ratios are clamped to this range so one absurd sample cannot poison every estimate. */
const MIN_DRIFT = 0.25;
const MAX_DRIFT = 20;
/**
 * Bounds of the shift tracker (see `PairState.shift`). It never goes below 1: it only carries a
 * slowdown. NOTE: with a floor of 0.5, bursty arrivals (gamma, CV 10) taught it the wrong thing.
 * Between bursts a worker ran batches of 1 faster than their windows remembered (those windows
 * held burst-time runs), and 20 such runs took the shift to ~0.7. That factor then applied to the
 * batches of 16 that only bursts run: predicted at 33 ms where they took 43-50 ms. Admission
 * admitted on that prediction, the runs overran, and the planner passed over the admitted heads
 * (batch-choice.ts, overload). A run faster than its window's median now lowers only its own window.
 */
const MIN_SHIFT = 1;
const MAX_SHIFT = 2;

/**
 * The last `capacity` measurements with the time each was taken, kept twice: in arrival order
 * (a ring, to know which one leaves, by count or by age) and sorted (so a percentile is a
 * lookup). An insert is two binary searches and two short splices; plans read percentiles on
 * every arrival and plan, so reads must not sort or allocate.
 */
class SlidingWindow {
  private readonly values: Float64Array;
  private readonly atNs: Float64Array;
  private readonly sorted: number[] = [];
  /** Ring index of the oldest sample. */
  private head = 0;
  private count = 0;

  constructor(private readonly capacity: number) {
    this.values = new Float64Array(capacity);
    this.atNs = new Float64Array(capacity);
  }

  insert(value: number, atNs = 0): void {
    if (this.count === this.capacity) this.dropOldest();
    const i = (this.head + this.count) % this.capacity;
    this.values[i] = value;
    this.atNs[i] = atNs;
    this.count++;
    this.sorted.splice(lowerBound(this.sorted, value), 0, value);
  }

  private dropOldest(): void {
    this.sorted.splice(lowerBound(this.sorted, this.values[this.head]!), 1);
    this.head = (this.head + 1) % this.capacity;
    this.count--;
  }

  /** Drops the samples taken before `cutNs`, oldest first, keeping at least the `keep` newest. */
  dropTakenBefore(cutNs: number, keep: number): void {
    while (this.count > keep && this.atNs[this.head]! < cutNs) this.dropOldest();
  }

  get size(): number {
    return this.count;
  }

  percentile(p: number): number {
    const sorted = this.sorted;
    const rank = p * (sorted.length - 1);
    const lo = Math.floor(rank);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
  }
}

/** First index whose value is ≥ `value` in an ascending array. */
function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface Slot {
  window: SlidingWindow;
  /** Profiled median, when the slot was seeded from a LOAD profile. */
  profiledNs?: number;
  /** Profiled p99, with `profiledNs`. */
  profiledP99Ns?: number;
  /** True once a real measurement (not a profile seed) went in. */
  measured: boolean;
}

interface PairState {
  slots: Map<number, Slot>;
  /** EWMA of measured / profiled. */
  drift?: number;
  /**
   * Shift of the worker's recent INFERs against their windows' medians, tracked as a running
   * median (see `record`); every measured INFER estimate of the worker is scaled by it. 1 in
   * steady state; above 1 while the worker runs slower than its windows remember. Why: a
   * worker's speed changes faster than a 100-sample window follows (in a trace burst the
   * controller and clients compete for the same cores and every batch size slows at once); the
   * shift carries the change to every batch size within tens of runs. Never below 1: a speed-up
   * seen at one batch size says little about the others (see MIN_SHIFT).
   */
  shift: number;
  /** When the pair's last measurement came (for ageing its drift and shift with its samples). */
  lastRecordNs: number;
}

export class LatencyEstimator {
  // NOTE: nested maps keyed by the caller's own strings: estimates are read on every arrival and
  // plan, so lookups must not build keys.
  private readonly pairs = new Map<string, Map<string, PairState>>();
  /** Per worker: recent measured / predicted-median ratios of INFERs, every model and size. */
  private readonly tails = new Map<string, SlidingWindow>();

  /** When `ageAll` next sweeps every pair. */
  private nextSweepNs = 0;

  private lastModel = '';
  private lastWorkerId = '';
  private lastKey = -1;
  private lastPair: PairState | undefined;
  private lastSlot: Slot | undefined;

  constructor(private readonly config: EstimatorConfig = DEFAULT_ESTIMATOR_CONFIG) {}

  private pair(model: string, workerId: string): PairState {
    let byWorker = this.pairs.get(model);
    if (!byWorker) {
      byWorker = new Map();
      this.pairs.set(model, byWorker);
    }
    let state = byWorker.get(workerId);
    if (!state) {
      state = { slots: new Map(), shift: 1, lastRecordNs: 0 };
      byWorker.set(workerId, state);
    }
    return state;
  }

  /** Seeds a key from an offline profile (median and p99 of the profiling runs), at `nowNs`. */
  seed(model: string, workerId: string, batchSize: number, medianNs: number, p99Ns: number, nowNs = 0): void {
    const window = new SlidingWindow(this.config.windowSize);
    // A handful of profile samples: the first real measurements quickly outweigh them.
    for (let i = 0; i < SEED_MEDIANS; i++) window.insert(medianNs, nowNs);
    window.insert(p99Ns, nowNs);
    this.pair(model, workerId).slots.set(batchSize, { window, profiledNs: medianNs, profiledP99Ns: p99Ns, measured: false });
    this.lastSlot = undefined;
  }

  /** A measured duration of `batchSize` (or another key) on this worker, finished at `nowNs`. */
  record(model: string, workerId: string, batchSize: number, durationNs: number, nowNs = 0): void {
    const pair = this.pair(model, workerId);
    let slot = pair.slots.get(batchSize);
    if (!slot) {
      slot = { window: new SlidingWindow(this.config.windowSize), measured: false };
      pair.slots.set(batchSize, slot);
      this.lastSlot = undefined;
    }
    if ((this.config.tailWindow ?? 0) > 0 && batchSize > 0 && slot.window.size > 0) {
      let tail = this.tails.get(workerId);
      if (!tail) {
        tail = new SlidingWindow(this.config.tailWindow!);
        this.tails.set(workerId, tail);
      }
      const predictedNs = slot.window.percentile(this.config.expectedPercentile);
      if (predictedNs > 0) tail.insert(durationNs / predictedNs);
    }
    if (slot.profiledNs !== undefined && slot.window.size > 0) {
      // Running median of measured / window median (a stochastic-approximation step: up when a
      // run is slower than predicted, down when faster). Robust to outliers, and it converges
      // to 1 as the window catches up.
      const predictedNs = slot.window.percentile(this.config.expectedPercentile) * pair.shift;
      pair.shift *= durationNs > predictedNs ? 1 + this.config.shiftStep : 1 - this.config.shiftStep;
      pair.shift = Math.min(MAX_SHIFT, Math.max(MIN_SHIFT, pair.shift));
    }
    slot.window.insert(durationNs, nowNs);
    slot.measured = true;
    pair.lastRecordNs = nowNs;
    if (slot.profiledNs !== undefined && slot.profiledNs > 0) {
      const ratio = Math.min(MAX_DRIFT, Math.max(MIN_DRIFT, durationNs / slot.profiledNs));
      pair.drift = pair.drift === undefined ? ratio : pair.drift + DRIFT_ALPHA * (ratio - pair.drift);
    }
    if ((this.config.maxSampleAgeNs ?? 0) > 0) this.age(pair, nowNs - this.config.maxSampleAgeNs!, nowNs);
  }

  /**
   * Ages every pair, also those of workers that get no results (a worker the planner leaves idle
   * keeps the estimates of its last busy spell until then). At most every tenth of the age
   * limit, so callers may ask on every arrival and plan.
   */
  ageAll(nowNs: number): void {
    const maxAgeNs = this.config.maxSampleAgeNs ?? 0;
    if (maxAgeNs <= 0 || nowNs < this.nextSweepNs) return;
    this.nextSweepNs = nowNs + maxAgeNs / SWEEPS_PER_AGE;
    for (const byWorker of this.pairs.values()) for (const pair of byWorker.values()) this.age(pair, nowNs - maxAgeNs, nowNs);
  }

  /**
   * Drops the pair's measurements taken before `cutNs`. A measured window left empty is seeded
   * again from its profile (read times the pair's drift, as a size that never ran); one without
   * a profile keeps its newest sample. A pair with no measurement since `cutNs` also forgets its
   * drift and shift: its estimates are the profile's. O(batch sizes) per result, plus what leaves.
   */
  private age(pair: PairState, cutNs: number, nowNs: number): void {
    if (pair.lastRecordNs < cutNs) {
      // nothing measured within the limit: the drift and the shift are as old as the samples
      pair.drift = undefined;
      pair.shift = 1;
    }
    for (const slot of pair.slots.values()) {
      if (!slot.measured) continue;
      const hasProfile = slot.profiledNs !== undefined;
      slot.window.dropTakenBefore(cutNs, hasProfile ? 0 : 1);
      if (slot.window.size > 0) continue;
      for (let i = 0; i < SEED_MEDIANS; i++) slot.window.insert(slot.profiledNs!, nowNs);
      slot.window.insert(slot.profiledP99Ns ?? slot.profiledNs!, nowNs);
      slot.measured = false;
    }
  }

  /**
   * The bound in ns, or undefined when nothing is known for this key: the key's high percentile,
   * and at least its median times the worker's pooled tail ratio (see `tailWindow`).
   */
  estimateNs(model: string, workerId: string, batchSize: number): number | undefined {
    const bound = this.read(model, workerId, batchSize, this.config.percentile);
    const tail = batchSize > 0 ? this.tails.get(workerId) : undefined;
    if (bound === undefined || !tail || tail.size < MIN_TAIL_SAMPLES) return bound;
    const median = this.read(model, workerId, batchSize, this.config.expectedPercentile)!;
    return Math.max(bound, median * tail.percentile(this.config.percentile));
  }

  /** The typical duration (median) in ns, or undefined when nothing is known for this key. */
  expectedNs(model: string, workerId: string, batchSize: number): number | undefined {
    return this.read(model, workerId, batchSize, this.config.expectedPercentile);
  }

  private read(model: string, workerId: string, batchSize: number, percentile: number): number | undefined {
    // NOTE: the planner reads the bound and the median of one key back to back; the last lookup
    // is remembered so the second read skips the three map lookups.
    let pair: PairState | undefined;
    let slot: Slot | undefined;
    if (this.lastSlot && model === this.lastModel && workerId === this.lastWorkerId && batchSize === this.lastKey) {
      pair = this.lastPair;
      slot = this.lastSlot;
    } else {
      pair = this.pairs.get(model)?.get(workerId);
      slot = pair?.slots.get(batchSize);
      if (!slot) return undefined;
      this.lastModel = model;
      this.lastWorkerId = workerId;
      this.lastKey = batchSize;
      this.lastPair = pair;
      this.lastSlot = slot;
    }
    const estimate = slot.window.percentile(percentile);
    if (!slot.measured) return estimate * (pair!.drift ?? 1);
    return slot.profiledNs !== undefined ? estimate * pair!.shift : estimate;
  }

  forgetWorker(workerId: string): void {
    this.lastSlot = undefined;
    this.tails.delete(workerId);
    for (const byWorker of this.pairs.values()) byWorker.delete(workerId);
  }
}
