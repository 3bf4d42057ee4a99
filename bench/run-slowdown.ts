/**
 * How much slower runs went while requests poured in, from a controller's logs: each INFER's
 * measured duration against its predicted one, grouped by how many requests arrived (any
 * outcome, rejected ones too) per ms while it ran.
 *
 * Why: on a host where the controller and the client share the cores with the workers, every
 * arrival costs CPU (bench:bursty measures how much) that a run in flight then waits for. The
 * arrivals during a run are not known when it is planned (a burst starts at random), so a run's
 * slowdown in a burst is the host's, not the estimator's: this table shows its size.
 */

export interface RunTiming {
  startMs: number;
  durationMs: number;
  expectedDurationMs: number;
}

/** Lower edges of the bands, in arrivals per ms during the run. */
export const ARRIVAL_BANDS_PER_MS = [0, 0.2, 1, 2] as const;

export interface SlowdownBand {
  /** Arrivals per ms during the run: at least this ... */
  fromPerMs: number;
  /** ... and below this (Infinity for the last band). */
  toPerMs: number;
  numRuns: number;
  /** Measured / predicted duration at p50 and p90 (NaN without runs). */
  ratioP50: number;
  ratioP90: number;
}

const quantile = (sorted: number[], q: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN);

/** First index whose value is > `value` in an ascending array. */
function upperBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Runs grouped by arrivals per ms while they ran; `arrivalsMs` in any order. */
export function slowdownByArrivals(runs: readonly RunTiming[], arrivalsMs: readonly number[]): SlowdownBand[] {
  const arrivals = [...arrivalsMs].sort((a, b) => a - b);
  const ratios: number[][] = ARRIVAL_BANDS_PER_MS.map(() => []);
  for (const run of runs) {
    if (!(run.durationMs > 0) || !(run.expectedDurationMs > 0)) continue;
    const during = upperBound(arrivals, run.startMs + run.durationMs) - upperBound(arrivals, run.startMs);
    const perMs = during / run.durationMs;
    let band = ARRIVAL_BANDS_PER_MS.length - 1;
    while (band > 0 && perMs < ARRIVAL_BANDS_PER_MS[band]!) band--;
    ratios[band]!.push(run.durationMs / run.expectedDurationMs);
  }
  return ARRIVAL_BANDS_PER_MS.map((fromPerMs, band) => {
    const sorted = ratios[band]!.sort((a, b) => a - b);
    return {
      fromPerMs,
      toPerMs: ARRIVAL_BANDS_PER_MS[band + 1] ?? Number.POSITIVE_INFINITY,
      numRuns: sorted.length,
      ratioP50: quantile(sorted, 0.5),
      ratioP90: quantile(sorted, 0.9),
    };
  });
}
