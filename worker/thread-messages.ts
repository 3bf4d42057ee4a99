/** Messages between the worker's main thread and its inference thread (an executor behind messages). */
import type { ModelEntry } from '../shared/model-manifest.js';
import type { BatchProfileEntry, EarlyExitPlan, ExitFeedback, RampsWarmup, StageTiming } from '../shared/protocol.js';
import type { Tensor } from '../shared/tensor.js';
import type { SessionSettings } from '../onnx/session-options.js';

/** A tensor whose bytes travel as a transferred ArrayBuffer. */
export interface WireTensor {
  name: string;
  dtype: Tensor['dtype'];
  shape: number[];
  buffer: ArrayBuffer;
  byteOffset: number;
}

export type ThreadRequest =
  | { id: number; kind: 'load'; entry: ModelEntry; batchSizes: number[] }
  | { id: number; kind: 'unload'; modelName: string }
  | { id: number; kind: 'ramps'; modelName: string; siteIds: number[]; fused: boolean; warmup: RampsWarmup }
  | { id: number; kind: 'infer'; modelName: string; batchSize: number; inputs: WireTensor[]; numRequests: number; earlyExit?: EarlyExitPlan }
  | { id: number; kind: 'probe'; onnxBytes: Uint8Array }
  /** Pin the inference thread (and the onnxruntime threads it starts later) to these CPUs. */
  | { id: number; kind: 'pin'; cpus: string };

export type ThreadReply =
  | { id: number; ok: false; code: number; message: string }
  | { id: number; ok: true; kind: 'load'; profile: BatchProfileEntry[]; weightsBytes: number }
  | { id: number; ok: true; kind: 'done' }
  | { id: number; ok: true; kind: 'infer'; outputs: WireTensor[]; stages: StageTiming[]; outputRows?: number[]; feedback?: ExitFeedback }
  /** Not final: rows answered at a ramp while the INFER with the same id goes on. */
  | {
      id: number;
      ok: true;
      kind: 'exit';
      siteId: number;
      rows: number[];
      confidences: number[];
      predictions: number[];
      probabilities: ArrayBuffer;
      numClasses: number;
      atLocalNs: number;
    };

/** What the inference thread is started with. */
export type ThreadSettings = SessionSettings;

/**
 * A tensor ready to transfer: its bytes copied into a buffer of their own, unless `own` says the
 * caller made that buffer for it (received frames are external memory and must be copied).
 */
export function toWire(t: Tensor, own = false): WireTensor {
  const whole = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength;
  const bytes = own && whole ? t.data : new Uint8Array(t.data);
  return { name: t.name, dtype: t.dtype, shape: t.shape, buffer: bytes.buffer as ArrayBuffer, byteOffset: 0 };
}

export function fromWire(t: WireTensor): Tensor {
  return { name: t.name, dtype: t.dtype, shape: t.shape, data: new Uint8Array(t.buffer, t.byteOffset) };
}
