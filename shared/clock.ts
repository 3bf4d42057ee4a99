/**
 * One time base for the whole system: the controller's monotonic clock, in nanoseconds, as a
 * JS number.
 *
 * NOTE: `process.hrtime.bigint()` reads CLOCK_MONOTONIC, which every process on one host shares,
 * so on a single host no conversion is needed. Across hosts, workers and clients estimate their
 * offset to the controller (see `clock-sync.ts`) and convert. A double holds integer nanoseconds
 * exactly up to 2^53 ns (~104 days of uptime); beyond that precision degrades to a few ns, which
 * is far below anything we schedule.
 */
export function monotonicNowNs(): number {
  return Number(process.hrtime.bigint());
}

/** A clock that only moves when told to: for deterministic scheduler tests and simulations. */
export class VirtualClock {
  constructor(private currentNs = 0) {}

  nowNs(): number {
    return this.currentNs;
  }

  advanceNs(deltaNs: number): void {
    if (deltaNs < 0) throw new RangeError(`cannot move a clock backwards (${deltaNs} ns)`);
    this.currentNs += deltaNs;
  }

  setNs(nowNs: number): void {
    if (nowNs < this.currentNs) throw new RangeError('cannot move a clock backwards');
    this.currentNs = nowNs;
  }
}

export const NS_PER_MS = 1_000_000;
export const NS_PER_US = 1_000;

export function msToNs(ms: number): number {
  return Math.round(ms * NS_PER_MS);
}

export function nsToMs(ns: number): number {
  return ns / NS_PER_MS;
}
