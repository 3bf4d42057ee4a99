/**
 * Runs ONNX models with onnxruntime-node in a dedicated worker thread (one thread = one serial
 * executor, matching one device). The main thread only forwards requests and replies.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { EscapementError, type ErrorCodeValue } from '../shared/error-codes.js';
import type { ModelEntry } from '../shared/model-manifest.js';
import type { Tensor } from '../shared/tensor.js';
import type { Executor, InferOptions, InferOutcome, LoadOutcome } from './executor.js';
import type { SessionSettings } from './session-options.js';
import type { ThreadReply, ThreadRequest, WireTensor } from './thread-messages.js';
import { identityModelBytes } from './device-probe.js';

type Pending = { resolve: (reply: ThreadReply) => void; reject: (err: Error) => void; onExit?: (reply: Extract<ThreadReply, { kind: 'exit' }>) => void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class OnnxExecutor implements Executor {
  readonly device: string;
  private readonly thread: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private threadError: Error | undefined;

  constructor(settings: SessionSettings) {
    this.device = settings.device;
    // NOTE: the thread runs compiled JS; from TypeScript sources (tests) point at dist/.
    const here = fileURLToPath(import.meta.url);
    const script = here.endsWith('.ts') ? here.replace(/\/worker\/onnx-executor\.ts$/, '/dist/worker/inference-thread.js') : new URL('./inference-thread.js', import.meta.url);
    this.thread = new Worker(script, { workerData: settings });
    this.thread.on('message', (reply: ThreadReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      if (reply.ok && reply.kind === 'exit') {
        p.onExit?.(reply); // not final: the INFER goes on
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

  /** Fails with a clear message when the device's execution provider cannot create a session. */
  async probe(): Promise<void> {
    const reply = await this.call({ kind: 'probe', onnxBytes: identityModelBytes() });
    if (!reply.ok) throw new Error(`device '${this.device}' is unavailable: ${reply.message}`);
  }

  private call(req: DistributiveOmit<ThreadRequest, 'id'>, transfer: ArrayBuffer[] = [], onExit?: Pending['onExit']): Promise<ThreadReply> {
    if (this.threadError) return Promise.reject(this.threadError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...(onExit ? { onExit } : {}) });
      this.thread.postMessage({ ...req, id }, transfer);
    });
  }

  private static raise(reply: ThreadReply & { ok: false }): never {
    throw new EscapementError(reply.code as ErrorCodeValue, reply.message);
  }

  async load(entry: ModelEntry, batchSizes: number[]): Promise<LoadOutcome> {
    const reply = await this.call({
      kind: 'load',
      modelName: entry.manifest.name,
      onnxPath: entry.onnxPath,
      fileBytes: entry.fileBytes,
      batchSizes,
      ...(entry.manifest.sequence ? { sequenceBuckets: entry.manifest.sequence.buckets } : {}),
      inputs: entry.manifest.inputs,
      outputs: entry.manifest.outputs,
      ...(entry.manifest.earlyExit ? { earlyExit: { folder: dirname(entry.onnxPath), section: entry.manifest.earlyExit } } : {}),
    });
    if (!reply.ok) OnnxExecutor.raise(reply);
    if (reply.kind !== 'load') throw new Error('inference thread answered out of turn');
    return { profile: reply.profile, weightsBytes: reply.weightsBytes };
  }

  async prepareRamps(modelName: string, siteIds: number[]): Promise<void> {
    const reply = await this.call({ kind: 'ramps', modelName, siteIds });
    if (!reply.ok) OnnxExecutor.raise(reply);
  }

  async unload(modelName: string): Promise<void> {
    const reply = await this.call({ kind: 'unload', modelName });
    if (!reply.ok) OnnxExecutor.raise(reply);
  }

  async infer(modelName: string, _batchSize: number, inputs: Tensor[], options: InferOptions = {}): Promise<InferOutcome> {
    const wire: WireTensor[] = inputs.map((t) => {
      const copy = new Uint8Array(t.data); // a transferable copy; received frames are external memory
      return { name: t.name, dtype: t.dtype, shape: t.shape, buffer: copy.buffer, byteOffset: 0 };
    });
    const onExit = options.onExit;
    const request = { kind: 'infer' as const, modelName, inputs: wire, numRequests: options.numRequests ?? inputs[0]?.shape[0] ?? 0, ...(options.earlyExit ? { earlyExit: options.earlyExit } : {}) };
    const reply = await this.call(request, wire.map((w) => w.buffer), onExit
      ? (e) => onExit({ siteId: e.siteId, rows: e.rows, confidences: e.confidences, predictions: e.predictions, numClasses: e.numClasses, atLocalNs: e.atNs, probabilities: new Uint8Array(e.probabilities) })
      : undefined);
    if (!reply.ok) OnnxExecutor.raise(reply);
    if (reply.kind !== 'infer') throw new Error('inference thread answered out of turn');
    const outcome: InferOutcome = {
      outputs: reply.outputs.map((o) => ({ name: o.name, dtype: o.dtype, shape: o.shape, data: new Uint8Array(o.buffer, o.byteOffset) })),
      stages: reply.stages,
    };
    if (reply.outputRows) outcome.outputRows = reply.outputRows;
    if (reply.feedback) outcome.feedback = reply.feedback;
    return outcome;
  }

  async close(): Promise<void> {
    await this.thread.terminate();
  }
}

