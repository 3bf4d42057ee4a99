/**
 * What a trace asks of a server, printed before it is replayed: how many requests over how long,
 * the mean and the peak rate (the busiest 1-second window), how bursty the gaps are (coefficient of
 * variation: 1 for Poisson arrivals, far above 1 for bursts), and the time scale that puts the
 * replay's busiest second at a given share of a model's capacity (`--target-load`).
 */
import type { Arrival } from './trace.js';

export interface TraceSummary {
  numRequests: number;
  spanS: number;
  meanRps: number;
  /** Most arrivals in any 1-second window (sliding), per second. */
  peakRps: number;
  /** Coefficient of variation of the gaps between arrivals (0 with fewer than 3 arrivals). */
  gapCv: number;
}

/** Most arrivals within any window of `windowMs` (sliding, arrivals in time order). */
function peakCount(arrivals: readonly Arrival[], windowMs: number): number {
  let peak = 0;
  for (let lo = 0, hi = 0; hi < arrivals.length; hi++) {
    while (arrivals[hi]!.timeMs - arrivals[lo]!.timeMs >= windowMs) lo++;
    peak = Math.max(peak, hi - lo + 1);
  }
  return peak;
}

/** Summary of arrivals in time order (ms from 0). */
export function summarizeTrace(arrivals: readonly Arrival[]): TraceSummary {
  const n = arrivals.length;
  const spanMs = n > 0 ? arrivals[n - 1]!.timeMs - arrivals[0]!.timeMs : 0;
  let gapCv = 0;
  if (n >= 3) {
    const gaps = arrivals.slice(1).map((a, i) => a.timeMs - arrivals[i]!.timeMs);
    const mean = gaps.reduce((s, g) => s + g, 0) / gaps.length;
    const variance = gaps.reduce((s, g) => s + (g - mean) ** 2, 0) / gaps.length;
    gapCv = mean > 0 ? Math.sqrt(variance) / mean : 0;
  }
  return { numRequests: n, spanS: spanMs / 1000, meanRps: spanMs > 0 ? ((n - 1) * 1000) / spanMs : 0, peakRps: peakCount(arrivals, 1000), gapCv };
}

/**
 * The speed-up (`--time-scale`) at which the replay's busiest second offers at most `targetLoad`
 * of `capacityRps`: replayed s times faster, one second of the replay holds s seconds of the
 * trace, so the busiest replay second is the most arrivals in any (1000 × s) ms of the trace. That
 * count grows with s, so the largest s that keeps it within the target is found by bisection.
 */
export function timeScaleForTargetLoad(arrivals: readonly Arrival[], capacityRps: number, targetLoad: number): number {
  if (!(targetLoad > 0) || !(capacityRps > 0)) throw new RangeError('target load and capacity must be positive');
  const allowed = Math.max(1, Math.floor(targetLoad * capacityRps));
  if (arrivals.length <= allowed)
    throw new RangeError(`the trace has ${arrivals.length} arrivals, fewer than one second at ${allowed} req/s: any speed-up fits`);
  let lo = 1e-6; // fits: a window of 1 ns holds one arrival, or a few ties
  let hi = 1e9;
  if (peakCount(arrivals, 1000 * lo) > allowed)
    throw new RangeError(`more than ${allowed} arrivals share one instant: no speed-up keeps the peak within the target`);
  for (let i = 0; i < 100 && hi / lo > 1 + 1e-9; i++) {
    const mid = Math.sqrt(lo * hi);
    if (peakCount(arrivals, 1000 * mid) <= allowed) lo = mid;
    else hi = mid;
  }
  return lo;
}

export function formatTraceSummary(summary: TraceSummary): string {
  return `${summary.numRequests} requests over ${summary.spanS.toFixed(1)} s: mean ${summary.meanRps.toFixed(2)} req/s, peak second ${summary.peakRps} req/s, gap CV ${summary.gapCv.toFixed(2)}`;
}
