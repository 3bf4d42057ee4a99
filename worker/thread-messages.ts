/** Messages between the worker's main thread and its inference thread. */
import type { EarlyExitSection } from '../shared/early-exit-manifest.js';
import type { BatchProfileEntry, EarlyExitPlan, ExitFeedback, StageTiming } from '../shared/protocol.js';
import type { DType, TensorSpec } from '../shared/tensor.js';

export interface WireTensor {
  name: string;
  dtype: DType;
  shape: number[];
  buffer: ArrayBuffer;
  byteOffset: number;
}

export type ThreadRequest =
  | { id: number; kind: 'load'; modelName: string; onnxPath: string; fileBytes: number; batchSizes: number[]; sequenceBuckets?: number[]; inputs: TensorSpec[]; outputs: TensorSpec[]; earlyExit?: { folder: string; section: EarlyExitSection } }
  | { id: number; kind: 'unload'; modelName: string }
  | { id: number; kind: 'infer'; modelName: string; inputs: WireTensor[]; numRequests: number; earlyExit?: EarlyExitPlan }
  | { id: number; kind: 'probe'; onnxBytes: Uint8Array }
  | { id: number; kind: 'ramps'; modelName: string; siteIds: number[] };

export type ThreadReply =
  | { id: number; ok: false; code: number; message: string }
  | { id: number; ok: true; kind: 'load'; profile: BatchProfileEntry[]; weightsBytes: number }
  | { id: number; ok: true; kind: 'unload' }
  | { id: number; ok: true; kind: 'infer'; outputs: WireTensor[]; stages: StageTiming[]; outputRows?: number[]; feedback?: ExitFeedback }
  /** Not final: rows answered at a ramp while the INFER with the same id goes on. */
  | { id: number; ok: true; kind: 'exit'; siteId: number; rows: number[]; confidences: number[]; predictions: number[]; probabilities: ArrayBuffer; numClasses: number; atNs: number }
  | { id: number; ok: true; kind: 'probe' }
  | { id: number; ok: true; kind: 'ramps' };
