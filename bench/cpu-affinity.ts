/**
 * Pins a running process, every thread of it, to a set of CPUs, with util-linux's `taskset`
 * (Node has no call for sched_setaffinity). Threads it starts later inherit their creator's set.
 * Benchmarks use it to give the inference of one worker a core of its own, away from the
 * controller and the load generator.
 */
import { execFileSync } from 'node:child_process';

/** Pins `pid` to `cpus` (a taskset list: "0", "0-2", "1,3"); returns why not, or undefined. */
export function pinProcess(pid: number, cpus: string): string | undefined {
  if (process.platform !== 'linux') return 'CPU pinning needs Linux';
  try {
    execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', cpus, String(pid)], { stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return `taskset could not pin process ${pid} to CPUs ${cpus}: ${(err as Error).message}`;
  }
}
