/**
 * Tensors on the wire: a small description (`TensorMeta`) in the msgpack header plus the raw
 * little-endian bytes in a frame of their own, so nothing is copied through msgpack.
 */
import { ErrorCode, EscapementError } from './error-codes.js';

export const DTYPE_BYTES = {
  float32: 4,
  float64: 8,
  int64: 8,
  int32: 4,
  uint8: 1,
  int8: 1,
  bool: 1,
} as const;

export type DType = keyof typeof DTYPE_BYTES;

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}

export interface TensorMeta {
  name: string;
  dtype: DType;
  /** Concrete dimensions; for batched tensors the first one is the batch size. */
  shape: number[];
}

/** A tensor with its bytes. `data` is a view; it may share memory with a received frame. */
export interface Tensor extends TensorMeta {
  data: Uint8Array;
}

/** A model's declared tensor: `-1` marks the (dynamic) batch dimension. */
export interface TensorSpec {
  name: string;
  dtype: DType;
  shape: number[];
}

export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function byteLength(meta: Pick<TensorMeta, 'dtype' | 'shape'>): number {
  return numElements(meta.shape) * DTYPE_BYTES[meta.dtype];
}

export function isValidShape(shape: unknown, maxRank = 8): shape is number[] {
  return Array.isArray(shape) && shape.length <= maxRank && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** View a tensor's bytes as a Float32Array without copying when alignment allows. */
export function asFloat32(data: Uint8Array): Float32Array {
  if (data.byteOffset % 4 === 0) {
    return new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
  }
  return new Float32Array(data.slice().buffer);
}

export function bytesOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * Checks one request's tensors against a model's declared inputs: every declared input present
 * once, with its dtype, a batch dimension of exactly 1, and the declared non-batch dimensions.
 * A -1 after the batch dimension is a sequence axis: any length from 1 to `maxSequenceLength`,
 * the same for every input. Returns that length (0 when the model has none). Throws
 * INVALID_INPUT with a message naming the offending tensor.
 */
export function validateRequestInputs(specs: readonly TensorSpec[], tensors: readonly Tensor[], maxSequenceLength = 0): number {
  if (tensors.length !== specs.length) {
    throw new EscapementError(
      ErrorCode.INVALID_INPUT,
      `expected ${specs.length} input tensor(s) (${specs.map((s) => s.name).join(', ')}), got ${tensors.length}`,
    );
  }
  let seqLength = 0;
  for (const spec of specs) {
    const t = tensors.find((x) => x.name === spec.name);
    if (!t) throw new EscapementError(ErrorCode.INVALID_INPUT, `missing input tensor '${spec.name}'`);
    if (t.dtype !== spec.dtype) {
      throw new EscapementError(ErrorCode.INVALID_INPUT, `input '${spec.name}' must be ${spec.dtype}, got ${t.dtype}`);
    }
    const seqAxis = spec.shape.indexOf(-1, 1);
    if (seqAxis > 0 && t.shape.length === spec.shape.length) {
      const length = t.shape[seqAxis]!;
      if (!(length >= 1 && length <= maxSequenceLength)) {
        throw new EscapementError(ErrorCode.INVALID_INPUT, `input '${spec.name}' has ${length} tokens; this model takes 1 to ${maxSequenceLength}`);
      }
      if (seqLength > 0 && length !== seqLength) {
        throw new EscapementError(ErrorCode.INVALID_INPUT, `input '${spec.name}' has length ${length} but another input has ${seqLength}; they must match`);
      }
      seqLength = length;
    }
    const expected = spec.shape.map((d, i) => (i === 0 ? 1 : d < 0 ? seqLength : d));
    const ok = t.shape.length === expected.length && t.shape.every((d, i) => d === expected[i]);
    if (!ok) {
      const shown = spec.shape.map((d, i) => (i === 0 ? '1' : d < 0 ? 'T' : String(d)));
      throw new EscapementError(
        ErrorCode.INVALID_INPUT,
        `input '${spec.name}' must have shape [${shown.join(',')}] (one item per request), got [${t.shape.join(',')}]`,
      );
    }
    if (t.data.byteLength !== byteLength(t)) {
      throw new EscapementError(ErrorCode.INVALID_INPUT, `input '${spec.name}' declares ${byteLength(t)} bytes but its frame has ${t.data.byteLength}`);
    }
  }
  return seqLength;
}
