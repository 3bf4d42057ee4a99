/**
 * How far admission's own predictions have been off, learned from their outcomes, so that what
 * is admitted makes its deadline even where the per-batch estimates do not hold.
 *
 * Admission predicts when a new request will finish (queue-drain.ts): the batches ahead at their
 * typical durations, its own batch at the bound. Under a burst the queue is deep and every
 * admitted request sits near the edge of its deadline; batches that overrun then (two inference
 * threads, the controller and the client sharing two cores: a batch of 16 at 1.5x its median at
 * p99) push admitted requests past their deadlines. Per-batch bounds cannot say how errors add
 * up over a deep queue, but admission's past errors can: for every admitted request, the error
 * is its actual completion minus the completion predicted at its arrival (a request dropped
 * before running counts as finishing at its deadline or at its drop, whichever is later: a lower
 * bound). Errors are kept per depth of the queue it was admitted behind (full batches ahead:
 * 0, 1, 2, 3 or more), since a request with nothing ahead carries one batch's error and one
 * behind three carries four; the margin at a depth is a high quantile of its recent errors, and
 * admission requires the prediction plus the margin to meet the deadline.
 *
 * This is a feedback loop only through the depth mix: a larger margin admits fewer requests,
 * but the errors of those admitted are drawn from the same host, so the quantile settles where
 * the host puts it. The margin is never negative (a run that ends early frees time for others,
 * it does not license admitting more), and it is 0 until a depth has `minSamples` outcomes.
 *
 * Off by default (`controller --admission-margin-quantile`). NOTE: measured with bench:bursty
 * (gamma arrivals, CV 10, 50 % of capacity, fmnist-resnet, 2 workers, 4 seeds): at 0.9, 0.02 %
 * of admitted requests missed against 0.74 % without, but SLO attainment fell from 59-65 % to
 * 45-47 %: under bursts the errors at depth are large (p90 10-17 ms on a 40 ms SLO), so the
 * margin turns away much that would have made it.
 */

export interface AdmissionMarginConfig {
  /** Quantile of recent errors used as the margin, in (0, 1). 0 turns the margin off. */
  quantile: number;
  /** Outcomes remembered per depth. */
  windowSize: number;
  /** Outcomes a depth needs before its margin counts. */
  minSamples: number;
}

/** Depths kept apart: 0, 1, 2 full batches ahead, and 3 or more. */
export const ADMISSION_DEPTHS = 4;

/** Outcomes between re-reads of a depth's quantile. */
const REREAD_EVERY = 32;

export const DEFAULT_ADMISSION_MARGIN: AdmissionMarginConfig = { quantile: 0, windowSize: 1_000, minSamples: 100 };

export class AdmissionMargin {
  /** Per depth, a ring of recent errors (ns). */
  private readonly rings: number[][] = Array.from({ length: ADMISSION_DEPTHS }, () => []);
  private readonly next: number[] = new Array<number>(ADMISSION_DEPTHS).fill(0);
  /** Per depth, the margin last read from the ring, and outcomes since (it is re-read every `REREAD_EVERY`). */
  private readonly cachedNs: (number | undefined)[] = new Array<number | undefined>(ADMISSION_DEPTHS).fill(undefined);
  private readonly unread: number[] = new Array<number>(ADMISSION_DEPTHS).fill(0);

  constructor(private readonly config: AdmissionMarginConfig = DEFAULT_ADMISSION_MARGIN) {}

  static depthOf(numFullBatchesAhead: number): number {
    return Math.max(0, Math.min(ADMISSION_DEPTHS - 1, Math.floor(numFullBatchesAhead)));
  }

  /** One admitted request's outcome: it finished (or would have) `errorNs` after its predicted completion. */
  observe(depth: number, errorNs: number): void {
    if (!Number.isFinite(errorNs) || this.config.quantile <= 0) return;
    const d = AdmissionMargin.depthOf(depth);
    const ring = this.rings[d]!;
    if (ring.length < this.config.windowSize) ring.push(errorNs);
    else ring[this.next[d]!] = errorNs;
    this.next[d] = (this.next[d]! + 1) % this.config.windowSize;
    // NOTE: re-sorting the window on every arrival would cost ~10k comparisons a request; a
    // quantile of 1,000 outcomes barely moves in 32.
    if (++this.unread[d]! >= REREAD_EVERY || ring.length <= this.config.minSamples) this.cachedNs[d] = undefined;
  }

  /** The margin admission adds at this depth (ns, >= 0). */
  marginNs(depth: number): number {
    const d = AdmissionMargin.depthOf(depth);
    const cached = this.cachedNs[d];
    if (cached !== undefined) return cached;
    const ring = this.rings[d]!;
    let marginNs = 0;
    if (this.config.quantile > 0 && ring.length >= this.config.minSamples) {
      const sorted = [...ring].sort((a, b) => a - b);
      marginNs = Math.max(0, sorted[Math.min(sorted.length - 1, Math.floor(this.config.quantile * sorted.length))]!);
    }
    this.cachedNs[d] = marginNs;
    this.unread[d] = 0;
    return marginNs;
  }

  /** Margins per depth (ms) and their sample counts, for status and benchmarks. */
  snapshot(): { depth: number; marginMs: number; numSamples: number }[] {
    return this.rings.map((ring, depth) => ({ depth, marginMs: this.marginNs(depth) / 1e6, numSamples: ring.length }));
  }
}
