/**
 * The controller's prediction of one worker's executor: a FIFO of planned actions with their
 * expected durations, anchored at the actual end time of the last result (Clockwork's
 * WorkerTracker).
 *
 * `freeAtNs(now)` is when the worker is predicted to finish everything planned so far. Each
 * result re-anchors the timeline on the worker's reported end, so a late action pushes the
 * prediction later and an early one pulls it in. When the head's result is overdue by more than
 * `lagNs`, the head is assumed to have ended `lagNs` ago and the rest of the plan to run from
 * there (Clockwork's re-basing): the prediction slides forward with time instead of staying
 * anchored in the past, without assuming the worker is stuck forever.
 */
export interface TimelineConfig {
  /** How far behind prediction the head may fall before the timeline re-bases. Default 10 ms. */
  lagNs: number;
  /** Assumed controller -> worker delivery delay. Default 0.5 ms (loopback zeromq RTT p99 ≈ 0.3 ms). */
  futureNs: number;
}

export const DEFAULT_TIMELINE_CONFIG: TimelineConfig = { lagNs: 10_000_000, futureNs: 500_000 };

interface Planned {
  actionId: number;
  durationNs: number;
}

export class WorkerTimeline {
  private readonly planned: Planned[] = [];
  private totalNs = 0;
  private workBeginNs = 0;

  constructor(private readonly config: TimelineConfig = DEFAULT_TIMELINE_CONFIG) {}

  get numPlanned(): number {
    return this.planned.length;
  }

  add(actionId: number, durationNs: number, nowNs: number): void {
    if (this.planned.length === 0) this.workBeginNs = Math.max(this.workBeginNs, nowNs);
    this.planned.push({ actionId, durationNs });
    this.totalNs += durationNs;
  }

  freeAtNs(nowNs: number): number {
    let beginNs = this.workBeginNs;
    const head = this.planned[0];
    if (head && beginNs + head.durationNs + this.config.lagNs < nowNs) {
      beginNs = nowNs - this.config.lagNs - head.durationNs;
    }
    return Math.max(beginNs + this.totalNs, nowNs + this.config.futureNs);
  }

  /** When the worker went idle (its last reported end), or +Infinity while it has work planned. */
  idleSinceNs(): number {
    return this.planned.length === 0 ? this.workBeginNs : Number.POSITIVE_INFINITY;
  }

  /** Folds in a result: `endNs` is the worker-reported end (controller clock). */
  complete(actionId: number, endNs: number): void {
    const index = this.planned.findIndex((p) => p.actionId === actionId);
    if (index < 0) return;
    const [done] = this.planned.splice(index, 1);
    this.totalNs -= done!.durationNs;
    if (index === 0) this.workBeginNs = endNs;
    // NOTE: a non-head completion (an action refused out of order) just removes its share.
  }

  clear(): void {
    this.planned.length = 0;
    this.totalNs = 0;
  }
}
