/**
 * Every error that crosses a process boundary, with a stable numeric code grouped by phase (as
 * Clockwork's worker_api.h): 10s protocol, 20s admission, 30s request fate, 50s LOAD, 60s
 * UNLOAD, 70s RAMPS, 80s INFER, 90s the offline tools. Codes never change meaning; new ones get
 * new numbers.
 *
 * `httpStatus` is what the HTTP front door maps each code to.
 */
export const ErrorCode = {
  OK: 0,

  // 10s: protocol
  MALFORMED_MESSAGE: 10,
  UNKNOWN_MESSAGE_TYPE: 11,
  UNSUPPORTED_PROTOCOL_VERSION: 12,
  UNKNOWN_WORKER: 13,
  MESSAGE_TOO_LARGE: 14,
  ADMIN_TOKEN_REQUIRED: 15,

  // 20s: admission (answered at arrival)
  UNKNOWN_MODEL: 20,
  INVALID_INPUT: 21,
  INVALID_DEADLINE: 22,
  DUPLICATE_REQUEST_ID: 23,
  CANNOT_MEET_DEADLINE: 24,
  NO_WORKERS: 25,
  QUEUE_FULL: 26,

  // 30s: what happened to an admitted request
  DEADLINE_MISSED: 30,
  DROPPED_BEFORE_EXECUTION: 31,
  WORKER_LOST: 32,
  CONTROLLER_SHUTDOWN: 33,
  CLIENT_TIMEOUT: 34,
  CLIENT_CLOSED: 35,
  MODEL_UNAVAILABLE: 36,
  INTERNAL_ERROR: 38,

  // 50s: LOAD
  LOAD_TOO_LATE: 51,
  LOAD_UNKNOWN_MODEL: 52,
  LOAD_INSUFFICIENT_MEMORY: 53,
  LOAD_ALREADY_LOADED: 54,
  LOAD_FAILED: 55,

  // 60s: UNLOAD
  UNLOAD_TOO_LATE: 61,
  UNLOAD_NOT_LOADED: 62,

  // 70s: RAMPS (preparing a chain for a ramp set)
  RAMPS_TOO_LATE: 71,
  RAMPS_NOT_LOADED: 72,
  RAMPS_FAILED: 73,

  // 80s: INFER
  INFER_TOO_LATE: 81,
  INFER_NOT_LOADED: 82,
  INFER_INVALID_INPUT: 83,
  INFER_INVALID_BATCH_SIZE: 84,
  INFER_RUNTIME_ERROR: 85,

  // 90s: the offline tools (prepare, inspect, ingest, replay and compare's inputs)
  PREPARE_REFUSED: 90,
  DATASET_INVALID: 91,
  MANIFEST_INVALID: 92,
  TRACE_INVALID: 93,
  TOKENIZER_INVALID: 94,
  OPSET_UPGRADE_FAILED: 95,
  DRIFT_INVALID: 96,
  DEVICE_PLACEMENT_REFUSED: 97,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;
export type ErrorCodeValue = (typeof ErrorCode)[ErrorCodeName];

interface CatalogEntry {
  name: ErrorCodeName;
  httpStatus: number;
  /** What the code means and, where there is one, what to do about it. */
  description: string;
}

const CATALOG: Record<number, CatalogEntry> = {};
function describe(name: ErrorCodeName, httpStatus: number, description: string): void {
  CATALOG[ErrorCode[name]] = { name, httpStatus, description };
}

describe('OK', 200, 'success');
describe('MALFORMED_MESSAGE', 400, 'the message could not be decoded; check the frame layout and msgpack header');
describe('UNKNOWN_MESSAGE_TYPE', 400, 'the header names a message type this peer does not handle');
describe('UNSUPPORTED_PROTOCOL_VERSION', 400, 'peer speaks another protocol version; upgrade one side');
describe('UNKNOWN_WORKER', 409, 'the controller does not know this worker; send hello again');
describe('MESSAGE_TOO_LARGE', 413, 'a tensor or message exceeds the configured size limit');
describe('ADMIN_TOKEN_REQUIRED', 403, "changing how the controller serves (configure, repository load/unload) needs the controller's admin token");
describe('UNKNOWN_MODEL', 404, "no model of that name is in the controller's repository");
describe('INVALID_INPUT', 400, "input tensors do not match the model's declared names, dtypes or shapes");
describe('INVALID_DEADLINE', 400, 'give exactly one of sloMs > 0 or a deadline in the future');
describe('DUPLICATE_REQUEST_ID', 409, 'this client already has a request in flight with that id');
describe('CANNOT_MEET_DEADLINE', 429, 'rejected at arrival: the plan cannot finish it before its deadline; retry later or relax the SLO');
describe('NO_WORKERS', 503, 'no worker is registered that can serve the model');
describe('QUEUE_FULL', 503, "the controller's queue is at its bound; shed load or add workers");
describe('DEADLINE_MISSED', 504, 'executed, but finished after the deadline');
describe('DROPPED_BEFORE_EXECUTION', 504, 'queued, but no worker could start it in time; dropped before its deadline');
describe('WORKER_LOST', 503, 'the worker running it stopped answering and the deadline left no time to retry');
describe('CONTROLLER_SHUTDOWN', 503, 'the controller is shutting down');
describe('CLIENT_TIMEOUT', 504, 'the client gave up waiting for the controller (is it running?)');
describe('CLIENT_CLOSED', 499, 'the client was closed before an answer arrived');
describe('MODEL_UNAVAILABLE', 503, 'no worker could load the model; see the controller log for the load error');
describe('INTERNAL_ERROR', 500, 'the controller failed while handling this request; it was answered rather than lost (see the controller log)');
describe('LOAD_TOO_LATE', 503, 'LOAD could not start before its window closed');
describe('LOAD_UNKNOWN_MODEL', 404, 'the worker has no model of that name in its model directory');
describe('LOAD_INSUFFICIENT_MEMORY', 507, "the worker's memory budget has no room for the model");
describe('LOAD_ALREADY_LOADED', 409, 'reserved: LOAD is idempotent and re-profiles a loaded model');
describe('LOAD_FAILED', 500, 'the runtime could not create a session for the model');
describe('UNLOAD_TOO_LATE', 503, 'UNLOAD could not start before its window closed');
describe('UNLOAD_NOT_LOADED', 409, 'the model is not loaded on this worker');
describe('RAMPS_TOO_LATE', 503, 'RAMPS could not start before its window closed');
describe('RAMPS_NOT_LOADED', 503, 'the model is not loaded (or has no early-exit package) on this worker');
describe('RAMPS_FAILED', 500, 'the worker could not build the chain for that ramp set');
describe('INFER_TOO_LATE', 503, 'INFER could not start before its window closed');
describe('INFER_NOT_LOADED', 503, 'the model is not loaded on this worker');
describe('INFER_INVALID_INPUT', 400, "the worker rejected the batch's input tensors");
describe('INFER_INVALID_BATCH_SIZE', 400, 'the batch size is not one the model was profiled at');
describe('INFER_RUNTIME_ERROR', 500, 'the runtime failed while executing the model');
describe('PREPARE_REFUSED', 422, 'prepare cannot make an early-exit package of this model; the message names the node or input and what to do');
describe('DATASET_INVALID', 400, 'the dataset (IDX, .npy, dataset.json, an image folder or a text corpus) cannot be read as the model needs it');
describe('MANIFEST_INVALID', 400, "a package's manifest.json (or its early-exit section) is malformed; re-run prepare");
describe('TRACE_INVALID', 400, 'the trace cannot be read: bad rows (with line numbers) or no field that holds the time; see --time-field and --format');
describe('TOKENIZER_INVALID', 400, "the text model's tokenizer file is malformed, or a text does not fit it");
describe('OPSET_UPGRADE_FAILED', 422, "the model's opset is below onnxruntime's floor of 7 and the ONNX library's converter is missing or failed");
describe('DRIFT_INVALID', 400, 'the drift description (--drift) is malformed');
describe(
  'DEVICE_PLACEMENT_REFUSED',
  422,
  'on this device onnxruntime would run some nodes on the CPU; the message names them (worker --cpu-fallback allows it)',
);

export function errorName(code: number): string {
  return CATALOG[code]?.name ?? `UNKNOWN_ERROR_${code}`;
}

export function httpStatusFor(code: number): number {
  return CATALOG[code]?.httpStatus ?? 500;
}

export function describeError(code: number): string {
  return CATALOG[code]?.description ?? 'unknown error code';
}

/** An error with a stable code; thrown inside one process, sent as `{code, message}` across. */
export class EscapementError extends Error {
  override readonly name: string = 'EscapementError';

  constructor(
    readonly code: ErrorCodeValue,
    message: string,
  ) {
    super(`${errorName(code)}: ${message}`);
  }
}

export function isEscapementError(err: unknown): err is EscapementError {
  return err instanceof EscapementError;
}

/**
 * An error of one of the offline tools or of a file they read (a package, a dataset, a trace), with
 * its catalog code. Unlike EscapementError its message is its own, unprefixed: these are read by
 * people at a command line, and the CLI prints the code's name beside it.
 */
export abstract class CodedError extends Error {
  abstract readonly code: ErrorCodeValue;
}

export function isCodedError(err: unknown): err is CodedError {
  return err instanceof CodedError;
}
