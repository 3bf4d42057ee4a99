/**
 * A model's recent arrival rate: an exponentially decayed count of admitted requests. O(1) per
 * arrival and per read, so admission can ask it on every request.
 */

/** Time constant of the decay (ns). Default 100 ms: follows a trace's bursts within a few batches. */
export const DEFAULT_ARRIVAL_TAU_NS = 100_000_000;

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
