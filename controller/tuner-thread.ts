/**
 * The exit monitor's threshold search, run on a thread of its own while the controller waits.
 *
 * Why: run on the controller's own heap, the search left a compact controller's young-generation
 * collections copying 0.7-1.4 MB each (vanilla's: 0.01-0.05 MB) and set off a full collection
 * every ~4 s; the 70 % phases of bench:exits lost their requests in those pauses. With the search
 * on this thread (the same search, the controller blocked on it as before) a compact controller
 * collected like vanilla's (0.08 MB per scavenge, no full collection). Why the search does this
 * on the controller's heap and not in a bare process is not known (docs/benchmarks.md, runs P-AJ);
 * the thread sidesteps it. The window goes over by structured clone, the result comes back as
 * JSON in a shared buffer.
 *
 * The controller waits with `Atomics.wait` (the search takes 1-5 ms; its result is needed before
 * the next batch is planned, as before). If the thread cannot start, or an answer takes longer
 * than `TIMEOUT_MS`, the search runs in-process from then on: never worse than before.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { tuneThresholds, type ThresholdSearch, type TunerResult } from '../shared/threshold-tuner.js';

/** Longest wait for an answer before the search falls back in-process for good. */
const TIMEOUT_MS = 2_000;
/** Room for a result (a few hundred bytes for three ramps). */
const RESULT_BYTES = 64 * 1024;

/** The built worker (dist/controller/tuner-worker.js), also when this module runs from sources (tests). */
export function tunerWorkerPath(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts')
    ? here.replace(/\/controller\/tuner-thread\.ts$/, '/dist/controller/tuner-worker.js')
    : here.replace(/\/tuner-thread\.js$/, '/tuner-worker.js');
}

export class TunerThread {
  private worker: Worker | undefined;
  private readonly header: Int32Array;
  private readonly body: Uint8Array;
  private seq = 0;
  private readonly decoder = new TextDecoder();
  /** Why the thread is not used (undefined while it is). */
  private fallbackReason: string | undefined;
  /** Told once when searches move in-process during service (the thread failed or stalled). */
  onFallback: ((reason: string) => void) | undefined;

  constructor(workerPath = tunerWorkerPath()) {
    const shared = new SharedArrayBuffer(8 + RESULT_BYTES);
    this.header = new Int32Array(shared, 0, 2);
    this.body = new Uint8Array(shared, 8);
    if (!existsSync(workerPath)) {
      this.fallbackReason = `no built worker at ${workerPath}`;
      return;
    }
    try {
      this.worker = new Worker(workerPath, { workerData: { shared } });
      this.worker.unref();
      this.worker.on('error', (err: Error) => this.fallBack(`thread failed: ${err.message}`));
    } catch (err) {
      this.fallbackReason = `thread did not start: ${(err as Error).message}`;
    }
  }

  /** Undefined while searches run on the thread; otherwise why they run in-process. */
  get inProcessBecause(): string | undefined {
    return this.fallbackReason;
  }

  /** The search, as `tuneThresholds` (same arguments, same result). */
  readonly search: ThresholdSearch = (samples, ramps, wholeMs, overrides = {}) => {
    const worker = this.worker;
    if (!worker) return tuneThresholds(samples, ramps, wholeMs, overrides);
    const seq = ++this.seq;
    worker.postMessage({ seq, samples, ramps, wholeMs, overrides });
    const deadline = Date.now() + TIMEOUT_MS;
    while (Atomics.load(this.header, 0) !== seq) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.fallBack(`no answer within ${TIMEOUT_MS} ms`);
        return tuneThresholds(samples, ramps, wholeMs, overrides);
      }
      Atomics.wait(this.header, 0, Atomics.load(this.header, 0), left);
    }
    const length = this.header[1]!;
    if (length < 0) return tuneThresholds(samples, ramps, wholeMs, overrides);
    return JSON.parse(this.decoder.decode(this.body.slice(0, length))) as TunerResult;
  };

  close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.fallbackReason ??= 'closed';
    return worker ? worker.terminate().then(() => undefined) : Promise.resolve();
  }

  private fallBack(reason: string): void {
    this.fallbackReason = reason;
    this.onFallback?.(reason);
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
  }
}
