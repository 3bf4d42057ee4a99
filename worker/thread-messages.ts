/** Messages between the worker's main thread and its inference thread. */
import type { BatchProfileEntry, StageTiming } from '../shared/protocol.js';
import type { DType, TensorSpec } from '../shared/tensor.js';

export interface WireTensor {
  name: string;
  dtype: DType;
  shape: number[];
  buffer: ArrayBuffer;
  byteOffset: number;
}

export type ThreadRequest =
  | { id: number; kind: 'load'; modelName: string; onnxPath: string; fileBytes: number; batchSizes: number[]; inputs: TensorSpec[]; outputs: TensorSpec[] }
  | { id: number; kind: 'unload'; modelName: string }
  | { id: number; kind: 'infer'; modelName: string; inputs: WireTensor[] }
  | { id: number; kind: 'probe'; onnxBytes: Uint8Array };

export type ThreadReply =
  | { id: number; ok: false; code: number; message: string }
  | { id: number; ok: true; kind: 'load'; profile: BatchProfileEntry[]; weightsBytes: number }
  | { id: number; ok: true; kind: 'unload' }
  | { id: number; ok: true; kind: 'infer'; outputs: WireTensor[]; stages: StageTiming[] }
  | { id: number; ok: true; kind: 'probe' };
