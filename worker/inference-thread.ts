/**
 * The worker's executor thread: owns every onnxruntime session and runs one request at a time.
 *
 * NOTE: `session.run()` and `InferenceSession.create()` block the thread that calls them, so they
 * live here and the worker's main thread stays free for sockets, timers and heartbeats. Tensors
 * arrive and leave as transferred ArrayBuffers (no copy).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { monotonicNowNs } from '../shared/clock.js';
import { ErrorCode } from '../shared/error-codes.js';
import type { BatchProfileEntry } from '../shared/protocol.js';
import { DTYPE_BYTES, numElements, type DType, type TensorSpec } from '../shared/tensor.js';
import { sessionOptions, type SessionSettings } from './session-options.js';
import type { ThreadReply, ThreadRequest, WireTensor } from './thread-messages.js';

const settings = workerData as SessionSettings;
const sessions = new Map<string, { session: ort.InferenceSession; outputs: TensorSpec[] }>();

/** Warm-up runs per batch size before timing (first ORT runs are much slower). */
const NUM_WARMUP_RUNS = 3;
/** Timed runs per batch size; also bounded by PROFILE_BUDGET_NS. */
const NUM_PROFILE_RUNS = 15;
const PROFILE_BUDGET_NS = 300_000_000;

function typedArray(dtype: DType, buffer: ArrayBuffer, byteOffset: number, numElems: number): ort.Tensor['data'] {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer, byteOffset, numElems);
    case 'float64':
      return new Float64Array(buffer, byteOffset, numElems);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, numElems);
    case 'int32':
      return new Int32Array(buffer, byteOffset, numElems);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buffer, byteOffset, numElems);
    case 'int8':
      return new Int8Array(buffer, byteOffset, numElems);
  }
}

function toOrt(t: WireTensor): ort.Tensor {
  const data = typedArray(t.dtype, t.buffer, t.byteOffset, numElements(t.shape));
  return new ort.Tensor(t.dtype === 'bool' ? 'bool' : t.dtype, data as never, t.shape);
}

function fromOrt(name: string, dtype: DType, t: ort.Tensor): WireTensor {
  const data = t.data as ArrayBufferView;
  // Copy into a fresh buffer we can transfer; ORT owns its output memory.
  const copy = new Uint8Array(data.byteLength);
  copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return { name, dtype, shape: [...t.dims], buffer: copy.buffer, byteOffset: 0 };
}

function zeroInputs(inputs: TensorSpec[], batchSize: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of inputs) {
    const shape = [batchSize, ...spec.shape.slice(1)];
    const buffer = new ArrayBuffer(numElements(shape) * DTYPE_BYTES[spec.dtype]);
    feeds[spec.name] = toOrt({ name: spec.name, dtype: spec.dtype, shape, buffer, byteOffset: 0 });
  }
  return feeds;
}

async function profile(session: ort.InferenceSession, inputs: TensorSpec[], batchSizes: number[]): Promise<BatchProfileEntry[]> {
  const entries: BatchProfileEntry[] = [];
  for (const batchSize of batchSizes) {
    const feeds = zeroInputs(inputs, batchSize);
    for (let i = 0; i < NUM_WARMUP_RUNS; i++) await session.run(feeds);
    const samples: number[] = [];
    const beginNs = monotonicNowNs();
    while (samples.length < NUM_PROFILE_RUNS && (samples.length < 3 || monotonicNowNs() - beginNs < PROFILE_BUDGET_NS)) {
      const t0 = monotonicNowNs();
      await session.run(feeds);
      samples.push(monotonicNowNs() - t0);
    }
    samples.sort((a, b) => a - b);
    entries.push({
      batchSize,
      durationNs: samples[samples.length >> 1]!,
      p99DurationNs: samples[Math.min(samples.length - 1, Math.ceil(samples.length * 0.99) - 1)]!,
    });
  }
  return entries;
}

async function handle(req: ThreadRequest): Promise<ThreadReply> {
  switch (req.kind) {
    case 'load': {
      const existing = sessions.get(req.modelName);
      if (existing) {
        // LOAD is idempotent: the controller may have lost track (a timed-out action); re-profile.
        return { id: req.id, ok: true, kind: 'load', profile: await profile(existing.session, req.inputs, req.batchSizes), weightsBytes: req.fileBytes };
      }
      const rssBefore = process.memoryUsage().rss;
      let session: ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(req.onnxPath, { ...sessionOptions(settings), logId: req.modelName });
      } catch (err) {
        return { id: req.id, ok: false, code: ErrorCode.LOAD_FAILED, message: `could not create a session: ${(err as Error).message}` };
      }
      const rssDelta = process.memoryUsage().rss - rssBefore;
      try {
        const entries = await profile(session, req.inputs, req.batchSizes);
        sessions.set(req.modelName, { session, outputs: req.outputs });
        return { id: req.id, ok: true, kind: 'load', profile: entries, weightsBytes: Math.max(req.fileBytes, rssDelta) };
      } catch (err) {
        await session.release();
        return { id: req.id, ok: false, code: ErrorCode.LOAD_FAILED, message: `profiling failed: ${(err as Error).message}` };
      }
    }
    case 'unload': {
      const entry = sessions.get(req.modelName);
      if (!entry) return { id: req.id, ok: false, code: ErrorCode.UNLOAD_NOT_LOADED, message: `${req.modelName} is not loaded` };
      sessions.delete(req.modelName);
      await entry.session.release();
      return { id: req.id, ok: true, kind: 'unload' };
    }
    case 'infer': {
      const entry = sessions.get(req.modelName);
      if (!entry) return { id: req.id, ok: false, code: ErrorCode.INFER_NOT_LOADED, message: `${req.modelName} is not loaded` };
      const feeds: Record<string, ort.Tensor> = {};
      for (const t of req.inputs) feeds[t.name] = toOrt(t);
      try {
        const t0 = monotonicNowNs();
        const results = await entry.session.run(feeds);
        const runNs = monotonicNowNs() - t0;
        const outputs = entry.outputs.map((spec) => fromOrt(spec.name, spec.dtype, results[spec.name]!));
        return { id: req.id, ok: true, kind: 'infer', outputs, stages: [{ name: 'model', durationNs: runNs }] };
      } catch (err) {
        return { id: req.id, ok: false, code: ErrorCode.INFER_RUNTIME_ERROR, message: (err as Error).message };
      }
    }
    case 'probe': {
      try {
        const session = await ort.InferenceSession.create(req.onnxBytes, sessionOptions(settings));
        await session.release();
        return { id: req.id, ok: true, kind: 'probe' };
      } catch (err) {
        return { id: req.id, ok: false, code: ErrorCode.LOAD_FAILED, message: (err as Error).message };
      }
    }
  }
}

parentPort!.on('message', (req: ThreadRequest) => {
  void handle(req).then((reply) => {
    const transfer = reply.ok && reply.kind === 'infer' ? reply.outputs.map((o) => o.buffer) : [];
    parentPort!.postMessage(reply, transfer);
  });
});
