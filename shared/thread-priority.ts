/**
 * CPU priorities of the serving processes on a shared host. Linux nice values are per thread and
 * a new thread inherits its creator's; setpriority(2) takes a thread id.
 *
 * - A worker raises every thread (and so the inference thread it starts later), so that other
 *   processes (a CPU hog, clients) preempt a run less often and its duration stays near the
 *   prediction; its main and zeromq I/O threads, which carry actions and results, go with it.
 * - The controller raises every thread it has (and so every thread it starts later): it is idle
 *   most of the time, but when a worker's result or a request arrives it must run at once. At the
 *   default niceness it lost the CPU to two raised inference threads on two cores, and results
 *   reached it up to 12 ms late in bursts (p99), which put admitted requests past their deadlines.
 *
 * A negative niceness needs CAP_SYS_NICE (root, or a raised RLIMIT_NICE); without it the thread
 * runs at the default and the caller says why.
 */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Sets the niceness of every thread of this process; threads started later inherit it from
 * theirs. Returns undefined on success, else why not (threads already changed keep the value).
 */
export function setProcessNiceness(niceness: number): string | undefined {
  if (!Number.isInteger(niceness) || niceness < -20 || niceness > 19) return `niceness must be an integer in [-20, 19], got ${niceness}`;
  let tids: number[];
  try {
    tids = readdirSync('/proc/self/task').map(Number);
  } catch {
    return 'per-thread priority needs Linux (/proc/self/task)';
  }
  for (const tid of tids) {
    try {
      setPriority(tid, niceness);
    } catch (err) {
      // NOTE: a thread may exit between the listing and the call; only a refusal matters
      if ((err as NodeJS.ErrnoException).code === 'ESRCH' || /ESRCH|no such process/i.test((err as Error).message)) continue;
      return `could not set niceness ${niceness}: ${(err as Error).message} (needs CAP_SYS_NICE for a negative value)`;
    }
  }
  return undefined;
}
