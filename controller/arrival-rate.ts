/**
 * A model's recent arrival rate: an exponentially decayed count of arrivals. O(1) per arrival
 * and per read, so admission can ask it on every request.
 */

/**
 * Time constant of the decay (ns). Default 25 ms: about one full batch of a small model, so the
 * estimate catches up with a burst within its first batches (at 100 ms a burst's first 10 ms
 * read as a tenth of its rate).
 */
export const DEFAULT_ARRIVAL_TAU_NS = 25_000_000;

export class ArrivalRate {
  private count = 0;
  private lastNs = 0;

  constructor(private readonly tauNs = DEFAULT_ARRIVAL_TAU_NS) {}

  /** Counts one arrival at `nowNs`. */
  record(nowNs: number): void {
    this.count = this.decayed(nowNs) + 1;
    this.lastNs = nowNs;
  }

  /** Arrivals per ns at `nowNs`. */
  perNs(nowNs: number): number {
    return this.decayed(nowNs) / this.tauNs;
  }

  private decayed(nowNs: number): number {
    if (this.count === 0) return 0;
    return this.count * Math.exp(-Math.max(0, nowNs - this.lastNs) / this.tauNs);
  }
}
