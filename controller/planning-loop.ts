/**
 * When the controller plans: soon after anything changes (an arrival, a result; many changes in
 * one turn of the event loop make one plan), and at the core's next wake-up (a batch timeout, a
 * schedule-ahead horizon, an overdue action) when nothing else happens first. The clock and the
 * timers are injected, so the loop is tested without waiting; the adapter passes Node's.
 */

/** Longest delay a Node timer keeps (2^31 - 1 ms); beyond it Node fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LoopTimers {
  /** Runs `fn` after the I/O already queued (Node's setImmediate). */
  soon(fn: () => void): void;
  after(fn: () => void, delayMs: number): unknown;
  cancel(handle: unknown): void;
}

export const NODE_TIMERS: LoopTimers = {
  soon: (fn) => void setImmediate(fn),
  after: (fn, delayMs) => setTimeout(fn, delayMs),
  cancel: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface PlanningLoopOptions {
  /** Plans at `nowNs` and carries the plan out (answers, actions). */
  plan(nowNs: number): void;
  /** The core's next wake-up after `nowNs`, if any. */
  nextWakeupNs(nowNs: number): number | undefined;
  nowNs(): number;
  /** Runs a handler so that an exception costs that one event (the adapter logs it). */
  guarded(what: string, handler: () => void): void;
  timers?: LoopTimers;
}

export class PlanningLoop {
  private scheduled = false;
  private wakeTimer: unknown;
  private closed = false;
  private readonly timers: LoopTimers;

  constructor(private readonly options: PlanningLoopOptions) {
    this.timers = options.timers ?? NODE_TIMERS;
  }

  /** Plans once after the current turn of the event loop, however many times it is asked. */
  soon(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    this.timers.soon(() => {
      this.scheduled = false;
      this.options.guarded('plan', () => this.runNow());
    });
  }

  /** Plans now and arms the wake-up timer for the core's next wake-up. */
  runNow(): void {
    if (this.closed) return;
    const nowNs = this.options.nowNs();
    this.options.plan(nowNs);
    this.arm(nowNs);
  }

  close(): void {
    this.closed = true;
    this.disarm();
  }

  private arm(nowNs: number): void {
    this.disarm();
    const wakeNs = this.options.nextWakeupNs(nowNs);
    if (wakeNs === undefined) return;
    // NOTE: timers take whole ms; waking early is harmless (the plan is re-evaluated). A delay
    // beyond MAX_TIMER_MS would fire after 1 ms and make a far wake-up a busy loop.
    const delayMs = Math.min(MAX_TIMER_MS, Math.max(1, Math.floor((wakeNs - nowNs) / 1e6)));
    this.wakeTimer = this.timers.after(() => this.options.guarded('plan', () => this.runNow()), delayMs);
  }

  private disarm(): void {
    if (this.wakeTimer !== undefined) this.timers.cancel(this.wakeTimer);
    this.wakeTimer = undefined;
  }
}
