/**
 * The exit monitors' threshold searches, run on a thread of its own while the controller serves.
 *
 * Why a thread: run on the controller's own heap, the search left a compact controller's
 * young-generation collections copying 0.7-1.4 MB each (vanilla's: 0.01-0.05 MB) and set off a
 * full collection every ~4 s; the 70 % phases of bench:exits lost their requests in those pauses.
 * With the search on this thread a compact controller collected like vanilla's (0.08 MB per
 * scavenge, no full collection). Why the search does this on the controller's heap and not in a
 * bare process is not known (docs/benchmarks.md, runs P-AJ); the thread sidesteps it.
 *
 * Why not wait for it: the controller first blocked on the thread (`Atomics.wait`), as it had
 * blocked on the in-process search. On a 2-core host at ~90 % CPU a search then took 11-29 ms
 * (p50 11 ms, windows of 1,000-1,600 samples), and planning stopped for as long, once every
 * 1-3 s. Now a search is posted and its results come back as a message; the monitor applies them
 * when they arrive (ExitMonitorOptions.deferSearch).
 *
 * If the thread cannot start, fails, or leaves a search unanswered for `TIMEOUT_MS`, searches run
 * in-process from then on (the searches it held included): never worse than before the thread.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SearchJob } from './exit-monitor.js';
import { tuneThresholds, type TunerResult } from '../shared/threshold-tuner.js';

/** Longest wait for an answer before searches fall back in-process for good. */
const TIMEOUT_MS = 2_000;

/** Called with a search's results in the order of its jobs, or undefined when it failed. */
export type SearchDone = (results: TunerResult[] | undefined) => void;

/** The built worker (dist/controller/tuner-worker.js), also when this module runs from sources (tests). */
export function tunerWorkerPath(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts')
    ? here.replace(/\/controller\/tuner-thread\.ts$/, '/dist/controller/tuner-worker.js')
    : here.replace(/\/tuner-thread\.js$/, '/tuner-worker.js');
}

/** Every job of a search, in-process; undefined if one throws (a bug: the search is pure). */
export function searchInProcess(jobs: readonly SearchJob[]): TunerResult[] | undefined {
  try {
    return jobs.map((job) => tuneThresholds(job.samples, job.ramps, job.wholeMs, job.overrides));
  } catch {
    return undefined;
  }
}

interface Pending {
  jobs: SearchJob[];
  done: SearchDone;
  timer: NodeJS.Timeout;
}

export class TunerThread {
  private worker: Worker | undefined;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  /** Why the thread is not used (undefined while it is). */
  private fallbackReason: string | undefined;
  /** Told once when searches move in-process during service (the thread failed or stalled). */
  onFallback: ((reason: string) => void) | undefined;

  constructor(workerPath = tunerWorkerPath()) {
    if (!existsSync(workerPath)) {
      this.fallbackReason = `no built worker at ${workerPath}`;
      return;
    }
    try {
      this.worker = new Worker(workerPath);
      this.worker.unref();
      this.worker.on('message', (answer: { seq: number; results: TunerResult[] | undefined }) => this.answered(answer.seq, answer.results));
      this.worker.on('error', (err: Error) => this.fallBack(`thread failed: ${err.message}`));
    } catch (err) {
      this.fallbackReason = `thread did not start: ${(err as Error).message}`;
    }
  }

  /** Undefined while searches run on the thread; otherwise why they run in-process. */
  get inProcessBecause(): string | undefined {
    return this.fallbackReason;
  }

  /** Searches still out on the thread. */
  get numPending(): number {
    return this.pending.size;
  }

  /**
   * Runs a search's jobs (each as `tuneThresholds`) and calls `done` with their results: later, from
   * the thread, or at once, in-process, when the thread is not in use.
   */
  run(jobs: SearchJob[], done: SearchDone): void {
    const worker = this.worker;
    if (!worker) {
      done(searchInProcess(jobs));
      return;
    }
    const seq = ++this.seq;
    const timer = setTimeout(() => this.fallBack(`no answer within ${TIMEOUT_MS} ms`), TIMEOUT_MS);
    timer.unref();
    this.pending.set(seq, { jobs, done, timer });
    worker.postMessage({ seq, jobs });
  }

  /** Stops the thread; searches still out are answered in-process. */
  close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.fallbackReason ??= 'closed';
    this.finishInProcess();
    return worker ? worker.terminate().then(() => undefined) : Promise.resolve();
  }

  private answered(seq: number, results: TunerResult[] | undefined): void {
    const pending = this.pending.get(seq);
    if (!pending) return;
    this.pending.delete(seq);
    clearTimeout(pending.timer);
    pending.done(results);
  }

  private fallBack(reason: string): void {
    if (!this.worker) return;
    this.fallbackReason = reason;
    this.onFallback?.(reason);
    const worker = this.worker;
    this.worker = undefined;
    void worker.terminate();
    this.finishInProcess();
  }

  private finishInProcess(): void {
    const held = [...this.pending.values()];
    this.pending.clear();
    for (const p of held) {
      clearTimeout(p.timer);
      p.done(searchInProcess(p.jobs));
    }
  }
}
