/**
 * Waiting for an open-loop send time without burning the load generator's CPU.
 *
 * Node timers have whole-ms granularity and may fire up to ~1 ms early, so a precise send needs
 * a final poll. Polling with `setImmediate` for the last millisecond before every send (what this
 * replaced) kept the generator spinning nearly all the time at ~1,000 req/s: measured, the replay
 * client took 43 % of a core on a 2-core machine and its workers got the CPU that was left. Here
 * the generator sleeps in timers until `spinNs` before the send and polls only for that last
 * stretch; a send that a timer overshoots is late by up to ~1 ms, and that lag is measured and
 * counted in the request's latency (latency runs from the scheduled time), never hidden.
 */
import { monotonicNowNs } from '../shared/clock.js';

/** Poll (instead of sleeping) only this close to the send time. */
const DEFAULT_SPIN_NS = 200_000;

const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const yieldOnce = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Resolves at local monotonic time `dueNs` or just after, never before; returns how late (ns). */
export async function waitUntilNs(dueNs: number, spinNs = DEFAULT_SPIN_NS): Promise<number> {
  let waitNs = dueNs - monotonicNowNs();
  while (waitNs > spinNs) {
    await sleepMs(Math.max(1, Math.floor((waitNs - spinNs) / 1e6)));
    waitNs = dueNs - monotonicNowNs();
  }
  while (waitNs > 0) {
    await yieldOnce();
    waitNs = dueNs - monotonicNowNs();
  }
  return -waitNs;
}
