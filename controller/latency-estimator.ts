/**
 * Duration estimates per (model, worker, batch size): a sliding window of recent measurements,
 * read at a high percentile.
 *
 * Clockwork keeps 10 samples at p99, which is the running max: one outlier inflates the estimate
 * for the next 10 runs. CPU inference is noisier than a GPU's (rare 2–17 ms hiccups at a 0.1–1 %
 * rate), so the window is longer and the percentile slightly lower; the planner's buffer absorbs
 * what the percentile leaves out. The offline profile from LOAD seeds the window, so estimates
 * exist before the first real INFER.
 */
export interface EstimatorConfig {
  /** Samples kept per key. Default 100: long enough that one outlier barely moves p95. */
  windowSize: number;
  /** Percentile read from the window, in [0, 1]. Default 0.95. */
  percentile: number;
}

export const DEFAULT_ESTIMATOR_CONFIG: EstimatorConfig = { windowSize: 100, percentile: 0.95 };

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
  }

  record(model: string, workerId: string, batchSize: number, durationNs: number): void {
    const key = LatencyEstimator.key(model, workerId, batchSize);
    let window = this.windows.get(key);
    if (!window) {
      window = new SlidingWindow(this.config.windowSize);
      this.windows.set(key, window);
    }
    window.insert(durationNs);
  }

  /** The estimate in ns, or undefined when nothing is known for this key. */
  estimateNs(model: string, workerId: string, batchSize: number): number | undefined {
    return this.windows.get(LatencyEstimator.key(model, workerId, batchSize))?.percentile(this.config.percentile);
  }

  forgetWorker(workerId: string): void {
    for (const key of [...this.windows.keys()]) if (key.split('\u0000')[1] === workerId) this.windows.delete(key);
  }
}
