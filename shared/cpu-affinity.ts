/**
 * Pins a process, or one thread of it, to a set of CPUs, with util-linux's `taskset` (Node has no
 * call for sched_setaffinity). Threads started later inherit their creator's set.
 *
 * A worker pins its inference thread (`worker --inference-cpus`), so that two workers' runs on
 * one host never share a core while another core idles; benchmarks pin whole processes to give
 * one worker a core of its own, away from the controller and the load generator.
 */
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';

/** Pins `pid` to `cpus` (a taskset list: "0", "0-2", "1,3"); returns why not, or undefined. */
export function pinProcess(pid: number, cpus: string): string | undefined {
  return taskset(['--all-tasks', '--pid', '--cpu-list', cpus, String(pid)], `process ${pid}`, cpus);
}

/** Pins the calling thread alone to `cpus`; returns why not, or undefined. */
export function pinThisThread(cpus: string): string | undefined {
  let tid: string;
  try {
    // "<pid>/task/<tid>": the thread's own id, which Node does not otherwise expose
    tid = readlinkSync('/proc/thread-self').split('/').at(-1)!;
  } catch {
    return 'CPU pinning needs Linux (/proc/thread-self)';
  }
  return taskset(['--pid', '--cpu-list', cpus, tid], `thread ${tid}`, cpus);
}

function taskset(args: string[], what: string, cpus: string): string | undefined {
  if (process.platform !== 'linux') return 'CPU pinning needs Linux';
  try {
    execFileSync('taskset', args, { stdio: 'ignore' });
    return undefined;
  } catch (err) {
    return `taskset could not pin ${what} to CPUs ${cpus}: ${(err as Error).message}`;
  }
}
