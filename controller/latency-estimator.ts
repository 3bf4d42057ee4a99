/**
 * Duration estimates per (model, worker, batch size): a sliding window of recent measurements,
 * read at a high percentile.
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
 */
export interface EstimatorConfig {
  /** Samples kept per key. Default 100: long enough that one outlier barely moves p95. */
  windowSize: number;
  /** Percentile read from the window, in [0, 1]. Default 0.95. */
  percentile: number;
}

export const DEFAULT_ESTIMATOR_CONFIG: EstimatorConfig = { windowSize: 100, percentile: 0.95 };

/** Weight of the newest measured/profiled ratio in the drift EWMA. */
const DRIFT_ALPHA = 0.2;
/** Drift ratios are clamped to this range so one absurd sample cannot poison every estimate. */
const MIN_DRIFT = 0.25;
const MAX_DRIFT = 20;

class SlidingWindow {
  private readonly values: number[] = [];
  private next = 0;
  private cachedNs: number | undefined;

  constructor(private readonly capacity: number) {}

  insert(value: number): void {
    if (this.values.length < this.capacity) this.values.push(value);
    else {
      this.values[this.next] = value;
      this.next = (this.next + 1) % this.capacity;
    }
    this.cachedNs = undefined;
  }

  get size(): number {
    return this.values.length;
  }

  percentile(p: number): number {
    if (this.cachedNs !== undefined) return this.cachedNs;
    const sorted = [...this.values].sort((a, b) => a - b);
    const rank = p * (sorted.length - 1);
    const lo = Math.floor(rank);
    const hi = Math.min(lo + 1, sorted.length - 1);
    this.cachedNs = sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
    return this.cachedNs;
  }
}

export class LatencyEstimator {
  private readonly windows = new Map<string, SlidingWindow>();
  /** Profiled median per key. */
  private readonly profiledNs = new Map<string, number>();
  /** Keys that have real measurements (not only profile seeds). */
  private readonly measured = new Set<string>();
  /** Measured / profiled ratio per (model, worker). */
  private readonly drift = new Map<string, number>();

  constructor(private readonly config: EstimatorConfig = DEFAULT_ESTIMATOR_CONFIG) {}

  private static key(model: string, workerId: string, batchSize: number): string {
    return `${model}\u0000${workerId}\u0000${batchSize}`;
  }

  /** Seeds a key from an offline profile (median and p99 of the profiling runs). */
  seed(model: string, workerId: string, batchSize: number, medianNs: number, p99Ns: number): void {
    const key = LatencyEstimator.key(model, workerId, batchSize);
    const window = new SlidingWindow(this.config.windowSize);
    // A handful of profile samples: the first real measurements quickly outweigh them.
    for (let i = 0; i < 4; i++) window.insert(medianNs);
    window.insert(p99Ns);
    this.windows.set(key, window);
    this.profiledNs.set(key, medianNs);
    this.measured.delete(key);
  }

  private static driftKey(model: string, workerId: string): string {
    return `${model}\u0000${workerId}`;
  }

  record(model: string, workerId: string, batchSize: number, durationNs: number): void {
    const key = LatencyEstimator.key(model, workerId, batchSize);
    let window = this.windows.get(key);
    if (!window) {
      window = new SlidingWindow(this.config.windowSize);
      this.windows.set(key, window);
    }
    window.insert(durationNs);
    this.measured.add(key);
    const profiled = this.profiledNs.get(key);
    if (profiled !== undefined && profiled > 0) {
      const dKey = LatencyEstimator.driftKey(model, workerId);
      const ratio = Math.min(MAX_DRIFT, Math.max(MIN_DRIFT, durationNs / profiled));
      const previous = this.drift.get(dKey);
      this.drift.set(dKey, previous === undefined ? ratio : previous + DRIFT_ALPHA * (ratio - previous));
    }
  }

  /** The estimate in ns, or undefined when nothing is known for this key. */
  estimateNs(model: string, workerId: string, batchSize: number): number | undefined {
    const key = LatencyEstimator.key(model, workerId, batchSize);
    const estimate = this.windows.get(key)?.percentile(this.config.percentile);
    if (estimate === undefined || this.measured.has(key)) return estimate;
    return estimate * (this.drift.get(LatencyEstimator.driftKey(model, workerId)) ?? 1);
  }

  forgetWorker(workerId: string): void {
    for (const key of [...this.windows.keys()]) {
      if (key.split('\u0000')[1] !== workerId) continue;
      this.windows.delete(key);
      this.profiledNs.delete(key);
      this.measured.delete(key);
    }
    for (const key of [...this.drift.keys()]) if (key.split('\u0000')[1] === workerId) this.drift.delete(key);
  }
}
