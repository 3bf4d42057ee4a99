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
 *
 * An action planned while the worker is idle starts after a delay the run estimates do not hold
 * (they are timed on the worker, from its start to its end): the hop from the controller to the
 * worker and the worker's own dispatch. The timeline learns that delay per worker, from the
 * reported starts of the actions it planned on an idle worker, and predicts with its median
 * (`startDelayNs`) once it has `MIN_DELAY_SAMPLES`; `futureNs` until then. So a worker whose
 * messages arrive late (a busier host, another machine) is planned with its own delay, and the
 * tail of the hop is left to the planner's buffer, as the tail of runs is.
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
  /** When it was planned, if the worker was idle then (its start then measures the start delay). */
  plannedIdleAtNs?: number;
}

/** Start delays remembered per worker. */
const DELAY_WINDOW = 64;
/** Samples needed before the learned delay replaces `futureNs`. */
const MIN_DELAY_SAMPLES = 16;
/** A learned delay never exceeds this (a stalled worker is the re-basing's business, not the delay's). */
const MAX_DELAY_NS = 10_000_000;

export class WorkerTimeline {
  private readonly planned: Planned[] = [];
  private totalNs = 0;
  private workBeginNs = 0;
  /** Recent start delays (ring) and their median, recomputed on each new sample. */
  private readonly delaysNs: number[] = [];
  private nextDelay = 0;
  private learnedDelayNs: number | undefined;
  /** The latest end a result reported. */
  private lastEndNs = 0;

  constructor(private readonly config: TimelineConfig = DEFAULT_TIMELINE_CONFIG) {}

  /** How long after it is planned an action on this idle worker starts: learned, or `futureNs`. */
  get startDelayNs(): number {
    return this.learnedDelayNs ?? this.config.futureNs;
  }

  get numPlanned(): number {
    return this.planned.length;
  }

  add(actionId: number, durationNs: number, nowNs: number): void {
    const idle = this.freeAtNs(nowNs) <= nowNs + this.startDelayNs;
    if (this.planned.length === 0) this.workBeginNs = Math.max(this.workBeginNs, nowNs);
    this.planned.push({ actionId, durationNs, ...(idle ? { plannedIdleAtNs: nowNs } : {}) });
    this.totalNs += durationNs;
  }

  /** When the next action planned now could start: after everything planned, and not before the worker's start delay. */
  freeAtNs(nowNs: number): number {
    return Math.max(this.plannedEndNs(nowNs), nowNs + this.startDelayNs);
  }

  /** When the worker finishes what is planned (`nowNs` or earlier when it is idle). */
  plannedEndNs(nowNs: number): number {
    let beginNs = this.workBeginNs;
    const head = this.planned[0];
    if (head && beginNs + head.durationNs + this.config.lagNs < nowNs) {
      beginNs = nowNs - this.config.lagNs - head.durationNs;
    }
    return beginNs + this.totalNs;
  }

  /** When the worker went idle (its last reported end), or +Infinity while it has work planned. */
  idleSinceNs(): number {
    return this.planned.length === 0 ? this.workBeginNs : Number.POSITIVE_INFINITY;
  }

  /**
   * Folds in a result: `endNs` is the worker-reported end, `startNs` its start (controller clock;
   * absent or 0 when it did not start).
   */
  complete(actionId: number, endNs: number, startNs = 0): void {
    const index = this.planned.findIndex((p) => p.actionId === actionId);
    if (index < 0) return;
    const [done] = this.planned.splice(index, 1);
    // NOTE: only if the worker really was idle then. The timeline predicts with medians, so half
    // the runs end after their predicted end; an action planned in that gap "on an idle worker"
    // waited for the run ahead, and such waits would pull the learned delay up (measured under
    // compact at 450 req/s, the median held at 0.39-0.44 ms either way; nothing else bounds it).
    const idleThen = done!.plannedIdleAtNs !== undefined && this.lastEndNs <= done!.plannedIdleAtNs;
    if (idleThen && startNs > 0) this.observeStartDelay(startNs - done!.plannedIdleAtNs!);
    this.lastEndNs = Math.max(this.lastEndNs, endNs);
    this.totalNs -= done!.durationNs;
    if (index === 0) this.workBeginNs = endNs;
    // NOTE: a non-head completion (an action refused out of order) just removes its share.
  }

  clear(): void {
    this.planned.length = 0;
    this.totalNs = 0;
  }

  private observeStartDelay(delayNs: number): void {
    const clamped = Math.min(MAX_DELAY_NS, Math.max(0, delayNs));
    if (this.delaysNs.length < DELAY_WINDOW) this.delaysNs.push(clamped);
    else this.delaysNs[this.nextDelay] = clamped;
    this.nextDelay = (this.nextDelay + 1) % DELAY_WINDOW;
    if (this.delaysNs.length < MIN_DELAY_SAMPLES) return;
    // NOTE: one sort of 64 numbers per result of an action planned on an idle worker: cheap beside the result's decoding
    const sorted = [...this.delaysNs].sort((a, b) => a - b);
    this.learnedDelayNs = sorted[sorted.length >> 1]!;
  }
}
