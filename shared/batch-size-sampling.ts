/**
 * Which batch sizes a worker's LOAD times and which it interpolates (the controller's estimate of a
 * LOAD's duration counts the same sizes). A real-size model makes timing every
 * size expensive: a BERT-base-shaped encoder at 128 tokens runs 0.11 s at batch 1 and 1.8 s at 16
 * on one thread, so 16 sizes × 4 buckets × (1 warm-up + 3 timed runs) kept its LOAD at 111 s.
 * Durations grow close to linearly in the batch size once a run is that long, so the powers of two
 * (with the smallest and largest size) are always timed, and a size between two timed ones is
 * interpolated when its own minimum runs would overrun the per-size cap; quick models, whose runs
 * are short, still have every size timed. The controller re-estimates every size online from the
 * worker's timings either way.
 */

/** Timed runs a size gets at least, after its warm-up (worker/ort-executor.ts). */
export const MIN_TIMED_RUNS_PER_SIZE = 3;
/** A size's timing stops after this long once it has its minimum runs. */
export const MAX_TIMING_NS_PER_SIZE = 300_000_000;

export interface Timing {
  durationNs: number;
  p99DurationNs: number;
}

/** Powers of two among `sizes`, plus the smallest and the largest, ascending. */
export function anchorBatchSizes(sizes: readonly number[]): number[] {
  if (sizes.length === 0) return [];
  const lo = Math.min(...sizes);
  const hi = Math.max(...sizes);
  return [...new Set(sizes.filter((b) => b === lo || b === hi || (b & (b - 1)) === 0))].sort((a, b) => a - b);
}

/** Linear between the nearest timed sizes below and above `batchSize` (or the nearest one, outside them). */
export function interpolateTiming(batchSize: number, timed: ReadonlyMap<number, Timing>): Timing {
  const sizes = [...timed.keys()].sort((a, b) => a - b);
  if (sizes.length === 0) throw new Error('no timed batch size to interpolate from');
  const below = sizes.filter((b) => b <= batchSize).at(-1);
  const above = sizes.find((b) => b >= batchSize);
  if (below === undefined || above === undefined || below === above) return { ...timed.get(below ?? above!)! };
  const f = (batchSize - below) / (above - below);
  const [a, b] = [timed.get(below)!, timed.get(above)!];
  return {
    durationNs: Math.round(a.durationNs + f * (b.durationNs - a.durationNs)),
    p99DurationNs: Math.round(a.p99DurationNs + f * (b.p99DurationNs - a.p99DurationNs)),
  };
}

/** Whether a size's minimum timed runs, at `estimatedNs` each, would overrun the per-size cap: then it is interpolated. */
export function tooSlowToTime(estimatedNs: number, minRuns = MIN_TIMED_RUNS_PER_SIZE, capNs = MAX_TIMING_NS_PER_SIZE): boolean {
  return estimatedNs * minRuns > capNs;
}

/** The sizes a LOAD times, given each size's expected run (ns): the anchors, and the others quick enough to time. */
export function timedBatchSizes(sizes: readonly number[], expectedNs: (batchSize: number) => number): number[] {
  const anchors = new Set(anchorBatchSizes(sizes));
  return [...new Set(sizes)].sort((a, b) => a - b).filter((b) => anchors.has(b) || !tooSlowToTime(expectedNs(b)));
}
