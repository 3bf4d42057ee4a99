/**
 * Raising the inference thread's CPU priority, so that on a shared host the other processes (a
 * CPU hog, the controller, clients) preempt a run less often and its duration stays near the
 * prediction. Linux nice values are per thread: the thread finds its own id in /proc and sets its
 * niceness with setpriority(2). A negative niceness needs CAP_SYS_NICE (root, or a raised
 * RLIMIT_NICE); without it the thread runs at the default and says why.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** Sets the calling thread's niceness (-20..19). Returns undefined on success, else why not. */
export function setThreadNiceness(niceness: number): string | undefined {
  if (!Number.isInteger(niceness) || niceness < -20 || niceness > 19) return `niceness must be an integer in [-20, 19], got ${niceness}`;
  let tid: number;
  try {
    // "/proc/thread-self" -> "<pid>/task/<tid>" (Linux 3.17+)
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return 'per-thread priority needs Linux (/proc/thread-self)';
  }
  try {
    setPriority(tid, niceness);
    return undefined;
  } catch (err) {
    return `could not set niceness ${niceness}: ${(err as Error).message} (needs CAP_SYS_NICE for a negative value)`;
  }
}
