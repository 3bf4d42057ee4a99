/**
 * Tensors between the Open Inference Protocol's JSON (or binary data extension) and our typed
 * bytes: names of datatypes, range checks of JSON values, and values back out for JSON replies.
 */
import { byteLength, type DType, type Tensor } from '../shared/tensor.js';
import type { InferInputTensor } from './oip-schema.js';

export const OIP_TYPES: Record<DType, string> = {
  float32: 'FP32',
  float64: 'FP64',
  int64: 'INT64',
  int32: 'INT32',
  uint8: 'UINT8',
  int8: 'INT8',
  bool: 'BOOL',
};
const FROM_OIP: Record<string, DType> = Object.fromEntries(Object.entries(OIP_TYPES).map(([k, v]) => [v, k as DType]));

/** A request the HTTP front refuses, with its status. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The integers each integer dtype takes from JSON (INT64: the integers a JSON number holds exactly). */
const INTEGER_RANGES: Partial<Record<DType, [number, number]>> = {
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int8: [-128, 127],
  uint8: [0, 255],
  bool: [0, 1],
};

/** One input as typed bytes: from its binary data when it came so, else from its JSON `data` (nested or flat). */
export function tensorFromOip(input: InferInputTensor, binary: Buffer | undefined): Tensor {
  const { name, datatype, shape } = input;
  const dtype = FROM_OIP[datatype];
  if (!dtype) throw new HttpError(400, `input '${name}': unsupported datatype ${JSON.stringify(datatype)} (use ${Object.values(OIP_TYPES).join(', ')})`);
  const numBytes = byteLength({ dtype, shape });
  if (binary) {
    if (binary.length !== numBytes)
      throw new HttpError(400, `input '${name}': binary_data_size ${binary.length} does not match shape and datatype (${numBytes} bytes)`);
    return { name, dtype, shape, data: new Uint8Array(binary) };
  }
  const flat = input.data?.flat(16);
  if (!flat) throw new HttpError(400, `input '${name}': "data" must be an array`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (flat.length !== count) throw new HttpError(400, `input '${name}': ${flat.length} values for shape [${shape.join(',')}] (${count})`);
  if (!flat.every((v) => typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))))
    throw new HttpError(400, `input '${name}': "data" must hold finite numbers (JSON numbers beyond ±1.8e308, such as 1e400, are infinite)`);
  const values = flat as number[];
  const range = INTEGER_RANGES[dtype];
  if (range && !values.every((v) => typeof v === 'boolean' || (Number.isInteger(v) && v >= range[0] && v <= range[1])))
    throw new HttpError(400, `input '${name}': ${datatype} data must be integers in [${range[0]}, ${range[1]}]`);
  const array =
    dtype === 'float32'
      ? Float32Array.from(values)
      : dtype === 'float64'
        ? Float64Array.from(values)
        : dtype === 'int32'
          ? Int32Array.from(values)
          : dtype === 'int64'
            ? BigInt64Array.from(values.map((v) => BigInt(Math.trunc(Number(v)))))
            : dtype === 'int8'
              ? Int8Array.from(values)
              : Uint8Array.from(values.map(Number));
  return { name, dtype, shape, data: new Uint8Array(array.buffer) };
}

/** A tensor's values as JSON numbers, flat in row-major order. */
export function oipValues(t: Tensor): number[] {
  const b = t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength);
  switch (t.dtype) {
    case 'float32':
      return Array.from(new Float32Array(b));
    case 'float64':
      return Array.from(new Float64Array(b));
    case 'int32':
      return Array.from(new Int32Array(b));
    case 'int64':
      return Array.from(new BigInt64Array(b), Number);
    case 'int8':
      return Array.from(new Int8Array(b));
    default:
      return Array.from(new Uint8Array(b));
  }
}
