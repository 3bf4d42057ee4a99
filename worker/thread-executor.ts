/**
 * Runs ONNX models with onnxruntime in a dedicated worker thread (one thread = one serial
 * executor, matching one device): the executor the device loop drives on the main thread, with
 * the sessions themselves behind messages (inference-thread.ts). If the thread dies, every call
 * in flight fails with its message.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { EscapementError, type ErrorCodeValue } from '../shared/error-codes.js';
import type { ModelEntry } from '../shared/model-manifest.js';
import type { Tensor } from '../shared/tensor.js';
import type { RampsWarmup } from '../shared/protocol.js';
import type { Executor, InferOptions, InferOutcome, LoadOutcome } from './executor.js';
import { identityModelBytes } from './device-probe.js';
import { CUDA_INSTALL_HINT, type SessionSettings } from '../onnx/session-options.js';
import { fromWire, toWire, type ThreadReply, type ThreadRequest } from './thread-messages.js';

type Pending = { resolve: (reply: ThreadReply) => void; reject: (err: Error) => void; onExit?: InferOptions['onExit'] };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class ThreadExecutor implements Executor {
  readonly device: string;
  private readonly thread: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private threadError: Error | undefined;

  constructor(settings: SessionSettings) {
    this.device = settings.device;
    // NOTE: the thread runs compiled JS; from TypeScript sources (tests) point at dist/.
    const here = fileURLToPath(import.meta.url);
    const script = here.endsWith('.ts')
      ? here.replace(/\/worker\/thread-executor\.ts$/, '/dist/worker/inference-thread.js')
      : new URL('./inference-thread.js', import.meta.url);
    this.thread = new Worker(script, { workerData: settings });
    this.thread.on('message', (reply: ThreadReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      if (reply.ok && reply.kind === 'exit') {
        // not final: the INFER goes on
        p.onExit?.({
          siteId: reply.siteId,
          rows: reply.rows,
          confidences: reply.confidences,
          predictions: reply.predictions,
          numClasses: reply.numClasses,
          atLocalNs: reply.atLocalNs,
          probabilities: new Uint8Array(reply.probabilities),
        });
        return;
      }
      this.pending.delete(reply.id);
      p.resolve(reply);
    });
    const failAll = (err: Error): void => {
      this.threadError = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.thread.on('error', failAll);
    this.thread.on('exit', (code) => failAll(new Error(`inference thread exited (code ${code})`)));
  }

  private async call(req: DistributiveOmit<ThreadRequest, 'id'>, transfer: ArrayBuffer[] = [], onExit?: InferOptions['onExit']): Promise<ThreadReply> {
    if (this.threadError) throw this.threadError;
    const id = this.nextId++;
    const reply = await new Promise<ThreadReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...(onExit ? { onExit } : {}) });
      this.thread.postMessage({ ...req, id }, transfer);
    });
    if (!reply.ok) throw new EscapementError(reply.code as ErrorCodeValue, reply.message);
    return reply;
  }

  /** Fails with a clear message when the device's execution provider cannot create a session. */
  async probe(): Promise<void> {
    try {
      await this.call({ kind: 'probe', onnxBytes: identityModelBytes() });
    } catch (err) {
      const message = (err as Error).message;
      // onnxruntime-node loads the CUDA provider's library on first use; this install skips it.
      const hint = /^cuda/.test(this.device) && /Failed to load (shared )?library/i.test(message) ? `; ${CUDA_INSTALL_HINT}` : '';
      throw new Error(`device '${this.device}' is unavailable: ${message}${hint}`, { cause: err });
    }
  }

  /**
   * Pins the inference thread to `cpus` (a taskset list); onnxruntime's own threads, started with
   * each session, inherit the set. Returns why not, or undefined.
   */
  async pinInferenceThread(cpus: string): Promise<string | undefined> {
    try {
      await this.call({ kind: 'pin', cpus });
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async load(entry: ModelEntry, batchSizes: number[]): Promise<LoadOutcome> {
    const reply = await this.call({ kind: 'load', entry, batchSizes });
    if (!reply.ok || reply.kind !== 'load') throw new Error('inference thread answered out of turn');
    return { profile: reply.profile, weightsBytes: reply.weightsBytes };
  }

  async prepareRamps(modelName: string, siteIds: number[], fused = false, warmup: RampsWarmup = 'full'): Promise<void> {
    await this.call({ kind: 'ramps', modelName, siteIds, fused, warmup });
  }

  async unload(modelName: string): Promise<void> {
    await this.call({ kind: 'unload', modelName });
  }

  async infer(modelName: string, batchSize: number, inputs: Tensor[], options: InferOptions = {}): Promise<InferOutcome> {
    const wire = inputs.map((t) => toWire(t));
    const request = {
      kind: 'infer' as const,
      modelName,
      batchSize,
      inputs: wire,
      numRequests: options.numRequests ?? batchSize,
      ...(options.earlyExit ? { earlyExit: options.earlyExit } : {}),
    };
    const reply = await this.call(
      request,
      wire.map((w) => w.buffer),
      options.onExit,
    );
    if (!reply.ok || reply.kind !== 'infer') throw new Error('inference thread answered out of turn');
    const outcome: InferOutcome = { outputs: reply.outputs.map(fromWire), stages: reply.stages };
    if (reply.outputRows) outcome.outputRows = reply.outputRows;
    if (reply.feedback) outcome.feedback = reply.feedback;
    return outcome;
  }

  async close(): Promise<void> {
    await this.thread.terminate();
  }
}
