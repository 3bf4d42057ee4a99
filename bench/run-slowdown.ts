/**
 * How much slower runs went while requests poured in, from a controller's logs: each INFER's
 * measured duration against its predicted one, grouped by how many requests arrived (any
 * outcome, rejected ones too) per ms while it ran.
 *
 * Why: on a host where the controller and the client share the cores with the workers, every
 * arrival costs CPU (bench:bursty measures how much) that a run in flight then waits for. The
 * arrivals during a run are not known when it is planned (a burst starts at random), so a run's
 * slowdown in a burst is the host's, not the estimator's: this table shows its size.
 *
 * The same ratios by how much of the run another worker ran too (`slowdownByOverlap`): two
 * inference threads on two cores leave every other thread (the controller, the client, the
 * workers' main threads) to preempt one of them, and a run's stretch follows the other worker's
 * activity during it (docs/benchmarks.md, "Two runs on one core").
 */

export interface RunTiming {
  startMs: number;
  durationMs: number;
  expectedDurationMs: number;
  /** The worker that ran it (`slowdownByOverlap` needs it). */
  worker?: string;
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

/** A band's runs, read from their ascending ratios. */
const ratioStats = (sorted: number[]) => ({ numRuns: sorted.length, ratioP50: quantile(sorted, 0.5), ratioP90: quantile(sorted, 0.9) });

/** The band `value` falls in, given the bands' ascending lower edges (the first takes anything lower). */
function bandOf(edges: readonly number[], value: number): number {
  let band = edges.length - 1;
  while (band > 0 && value < edges[band]!) band--;
  return band;
}

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
    ratios[bandOf(ARRIVAL_BANDS_PER_MS, during / run.durationMs)]!.push(run.durationMs / run.expectedDurationMs);
  }
  return ARRIVAL_BANDS_PER_MS.map((fromPerMs, band) => {
    const sorted = ratios[band]!.sort((a, b) => a - b);
    return {
      fromPerMs,
      toPerMs: ARRIVAL_BANDS_PER_MS[band + 1] ?? Number.POSITIVE_INFINITY,
      ...ratioStats(sorted),
    };
  });
}

/** Lower edges of the bands, in the share of a run during which another worker ran. */
export const OVERLAP_BANDS = [0, 0.05, 0.5, 0.95] as const;

export interface OverlapBand {
  /** Share of the run overlapped by another worker's runs: at least this ... */
  fromShare: number;
  /** ... and below this (above 1 for the last band, which includes 1). */
  toShare: number;
  numRuns: number;
  /** Measured / predicted duration at p50 and p90 (NaN without runs). */
  ratioP50: number;
  ratioP90: number;
  /** Share of the band's runs that took over 1.5x their prediction, in %. */
  over1p5Pct: number;
}

/** Runs grouped by the share of their time during which another worker's runs overlapped them. */
export function slowdownByOverlap(runs: readonly RunTiming[]): OverlapBand[] {
  const measured = runs.filter((r) => r.worker !== undefined && r.durationMs > 0 && r.expectedDurationMs > 0);
  // one worker's runs never overlap each other: sorted by start, they are sorted by end too
  const byWorker = new Map<string, { starts: number[]; ends: number[] }>();
  for (const r of [...measured].sort((a, b) => a.startMs - b.startMs)) {
    let w = byWorker.get(r.worker!);
    if (!w) byWorker.set(r.worker!, (w = { starts: [], ends: [] }));
    w.starts.push(r.startMs);
    w.ends.push(r.startMs + r.durationMs);
  }
  const ratios: number[][] = OVERLAP_BANDS.map(() => []);
  for (const run of measured) {
    const from = run.startMs;
    const to = run.startMs + run.durationMs;
    let overlapMs = 0;
    for (const [worker, w] of byWorker) {
      if (worker === run.worker) continue;
      for (let i = upperBound(w.ends, from); i < w.starts.length && w.starts[i]! < to; i++)
        overlapMs += Math.min(to, w.ends[i]!) - Math.max(from, w.starts[i]!);
    }
    // with more than two workers, overlaps add up past the run's length: cap at all of it
    ratios[bandOf(OVERLAP_BANDS, Math.min(1, overlapMs / run.durationMs))]!.push(run.durationMs / run.expectedDurationMs);
  }
  return OVERLAP_BANDS.map((fromShare, band) => {
    const sorted = ratios[band]!.sort((a, b) => a - b);
    return {
      fromShare,
      toShare: OVERLAP_BANDS[band + 1] ?? 1.01,
      ...ratioStats(sorted),
      over1p5Pct: sorted.length ? (100 * sorted.filter((x) => x > 1.5).length) / sorted.length : Number.NaN,
    };
  });
}
