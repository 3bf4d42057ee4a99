/**
 * Encoding and checked decoding of protocol messages.
 *
 * A message is `[header, ...tensorFrames]`: the header is plain MessagePack (`useRecords: false`
 * so other tools can read captures), tensors travel as raw frames (zero-copy on receive; zeromq
 * frames start at byteOffset 0, so typed-array views are free). Decoding never trusts the peer:
 * every field is checked, tensor frames must match their declared size, and anything wrong
 * raises a `ProtocolError` with a stable code instead of crashing the process.
 */
import { Packr } from 'msgpackr';
import { ErrorCode, EscapementError, type ErrorCodeValue } from './error-codes.js';
import { MESSAGE_VALIDATORS } from './message-schema.js';
import { plainValue, SchemaError } from './schema.js';
import type { AnyMessage } from './protocol.js';
import { byteLength, type Tensor, type TensorMeta } from './tensor.js';

/**
 * Every port that accepts peers decodes with this: 64-bit integers become numbers (range-checked by
 * the schemas, never BigInts), and `plainValue` refuses whatever extension types still decode.
 */
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, int64AsType: 'number' });

/** Default cap on one tensor frame (64 MiB). Large enough for 16×3×224×224 float32 (9.6 MB). */
export const DEFAULT_MAX_TENSOR_BYTES = 64 * 1024 * 1024;
/** Headers are small; anything bigger is malformed or hostile. */
export const MAX_HEADER_BYTES = 1024 * 1024;

export class ProtocolError extends EscapementError {
  override readonly name: string = 'ProtocolError';
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}

function fail(code: ErrorCodeValue, message: string): never {
  throw new ProtocolError(code, message);
}

export function encodeMessage(header: AnyMessage, tensors: readonly Uint8Array[] = []): Buffer[] {
  const frames: Buffer[] = [packr.pack(header)];
  for (const t of tensors) frames.push(Buffer.from(t.buffer, t.byteOffset, t.byteLength));
  return frames;
}

/** Decodes a header for a best-effort look (an error reply's request id); never trusts what it finds. */
export function unpackHeaderUnchecked(header: Buffer): unknown {
  if (header.byteLength > MAX_HEADER_BYTES) return undefined;
  try {
    const value: unknown = packr.unpack(header);
    plainValue(value, 'header', 16);
    return value;
  } catch {
    return undefined;
  }
}

export interface Decoded<M extends AnyMessage = AnyMessage> {
  header: M;
  /** Tensors described by the header's `inputs` or `outputs`, with their bytes. */
  tensors: Tensor[];
}

/**
 * Decodes and validates one multipart message. `maxTensorBytes` bounds each tensor frame
 * (a frame's declared size is checked before anything is read from it).
 */
export function decodeMessage(frames: readonly Buffer[], maxTensorBytes = DEFAULT_MAX_TENSOR_BYTES): Decoded {
  const [headerFrame, ...tensorFrames] = frames;
  if (!headerFrame || headerFrame.byteLength === 0) fail(ErrorCode.MALFORMED_MESSAGE, 'empty message');
  if (headerFrame.byteLength > MAX_HEADER_BYTES) fail(ErrorCode.MESSAGE_TOO_LARGE, `header of ${headerFrame.byteLength} bytes`);

  let raw: unknown;
  try {
    raw = packr.unpack(headerFrame);
  } catch (err) {
    fail(ErrorCode.MALFORMED_MESSAGE, `header is not valid msgpack (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail(ErrorCode.MALFORMED_MESSAGE, 'header is not a msgpack map');
  }
  const header = raw as Record<string, unknown>;
  const type = header.type;
  if (typeof type !== 'string' || !Object.hasOwn(MESSAGE_VALIDATORS, type)) {
    fail(ErrorCode.UNKNOWN_MESSAGE_TYPE, `unknown message type ${typeof type === 'string' ? JSON.stringify(type.slice(0, 64)) : `(a ${typeof type})`}`);
  }
  try {
    // Null fields count as absent (other encoders write nil for them), except in a status reply's measurements.
    plainValue(header, type, 16, type !== 'status_reply');
    MESSAGE_VALIDATORS[type as AnyMessage['type']](raw, type);
  } catch (err) {
    if (err instanceof SchemaError) fail(ErrorCode.MALFORMED_MESSAGE, `malformed '${type}' message: ${err.message}`);
    throw err;
  }
  if ((type === 'hello' || type === 'hello_ack') && header.v !== 1) {
    fail(ErrorCode.UNSUPPORTED_PROTOCOL_VERSION, `protocol version ${String(header.v)}; this build speaks 1`);
  }

  const metas = (header.inputs ?? header.outputs ?? []) as TensorMeta[];
  if (metas.length !== tensorFrames.length) {
    fail(ErrorCode.MALFORMED_MESSAGE, `header lists ${metas.length} tensor(s) but ${tensorFrames.length} frame(s) follow`);
  }
  const tensors: Tensor[] = metas.map((meta, i) => {
    const declared = byteLength(meta);
    if (declared > maxTensorBytes) {
      fail(ErrorCode.MESSAGE_TOO_LARGE, `tensor '${meta.name}' declares ${declared} bytes (limit ${maxTensorBytes})`);
    }
    const frame = tensorFrames[i]!;
    if (frame.byteLength !== declared) {
      fail(ErrorCode.MALFORMED_MESSAGE, `tensor '${meta.name}' declares ${declared} bytes but its frame has ${frame.byteLength}`);
    }
    return { name: meta.name, dtype: meta.dtype, shape: meta.shape, data: frame };
  });
  return { header: header as unknown as AnyMessage, tensors };
}
