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
import type { AnyMessage } from './protocol.js';
import { byteLength, isDType, isValidShape, type Tensor, type TensorMeta } from './tensor.js';

const packr = new Packr({ useRecords: false });

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

export interface Decoded<M extends AnyMessage = AnyMessage> {
  header: M;
  /** Tensors described by the header's `inputs` or `outputs`, with their bytes. */
  tensors: Tensor[];
}

type FieldKind = 'string' | 'number' | 'int' | 'array' | 'object' | 'tensors' | 'optional-number' | 'optional-string' | 'optional-tensors' | 'optional-array' | 'optional-object';

const SCHEMAS: Record<AnyMessage['type'], Record<string, FieldKind>> = {
  hello: { v: 'int', workerId: 'string', device: 'string', memoryBudgetBytes: 'number', pid: 'int', hostname: 'string', epoch: 'int' },
  hello_ack: { v: 'int', workerId: 'string', heartbeatIntervalMs: 'number', epoch: 'int' },
  reregister: { reason: 'string', epoch: 'int' },
  heartbeat: { workerId: 'string', epoch: 'int', numQueuedActions: 'int', usedMemoryBytes: 'number', loadedModels: 'array' },
  clock_ping: { seq: 'int', t0Ns: 'number' },
  clock_pong: { seq: 'int', t0Ns: 'number', t1Ns: 'number', t2Ns: 'number' },
  load: { actionId: 'int', earliestNs: 'number', latestNs: 'number', expectedDurationNs: 'number', expectedStartNs: 'number', modelName: 'string', batchSizes: 'array' },
  ramps: { actionId: 'int', earliestNs: 'number', latestNs: 'number', expectedDurationNs: 'number', expectedStartNs: 'number', modelName: 'string', siteIds: 'array' },
  unload: { actionId: 'int', earliestNs: 'number', latestNs: 'number', expectedDurationNs: 'number', expectedStartNs: 'number', modelName: 'string' },
  infer: { actionId: 'int', earliestNs: 'number', latestNs: 'number', expectedDurationNs: 'number', expectedStartNs: 'number', modelName: 'string', batchSize: 'int', numRequests: 'int', inputs: 'tensors', earlyExit: 'optional-object' },
  result: { actionId: 'int', actionType: 'string', modelName: 'string', code: 'int', timing: 'object', message: 'optional-string', outputs: 'optional-tensors', profile: 'optional-array', stages: 'optional-array', weightsBytes: 'optional-number', outputRows: 'optional-array', feedback: 'optional-object' },
  exit: { actionId: 'int', modelName: 'string', siteId: 'int', rows: 'array', confidences: 'array', predictions: 'array', atNs: 'number', outputs: 'tensors' },
  submit: { requestId: 'string', model: 'string', inputs: 'tensors', sloMs: 'optional-number', deadlineNs: 'optional-number' },
  response: { requestId: 'string', status: 'string', code: 'int', arrivalNs: 'number', deadlineNs: 'number', completeNs: 'number', outputs: 'optional-tensors', message: 'optional-string' },
  status_query: { queryId: 'string' },
  status_reply: { queryId: 'string', status: 'object' },
  configure: { queryId: 'string', policy: 'optional-string', batchTimeoutMs: 'optional-number', maxEnqueuedBatches: 'optional-number', exitMode: 'optional-string' },
  configure_reply: { queryId: 'string', code: 'int', message: 'optional-string' },
};

function checkField(type: string, key: string, value: unknown, kind: FieldKind): void {
  const optional = kind.startsWith('optional-');
  if (value === undefined || value === null) {
    if (optional) return;
    fail(ErrorCode.MALFORMED_MESSAGE, `'${type}' message lacks field '${key}'`);
  }
  const base = optional ? kind.slice('optional-'.length) : kind;
  const ok =
    (base === 'string' && typeof value === 'string' && value.length <= 4096) ||
    (base === 'number' && typeof value === 'number' && Number.isFinite(value)) ||
    (base === 'int' && Number.isSafeInteger(value)) ||
    (base === 'array' && Array.isArray(value)) ||
    (base === 'object' && typeof value === 'object' && !Array.isArray(value)) ||
    (base === 'tensors' && Array.isArray(value) && value.every(isTensorMeta));
  if (!ok) fail(ErrorCode.MALFORMED_MESSAGE, `'${type}' message has an invalid '${key}' (expected ${base})`);
}

function isTensorMeta(value: unknown): value is TensorMeta {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === 'string' && isDType(v.dtype) && isValidShape(v.shape);
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
  if (typeof type !== 'string' || !Object.hasOwn(SCHEMAS, type)) {
    fail(ErrorCode.UNKNOWN_MESSAGE_TYPE, `unknown message type ${JSON.stringify(type)}`);
  }
  const schema = SCHEMAS[type as AnyMessage['type']];
  for (const [key, kind] of Object.entries(schema)) checkField(type, key, header[key], kind);
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
