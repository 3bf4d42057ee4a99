/**
 * Deep schemas of every protocol message: what `decodeMessage` checks before a header touches any
 * state. Each peer is untrusted, so every nested field is checked for type, finiteness, range and
 * size; anything else fails with a path to the bad field (`result.timing.endNs: ...`).
 *
 * A schema is a function that throws a `SchemaError` or returns nothing. The combinators below
 * build them; `MESSAGE_SCHEMAS` has one per message type (the interfaces in `protocol.ts`).
 */
import type { AnyMessage } from './protocol.js';
import { isDType, isValidShape } from './tensor.js';

export class SchemaError extends Error {
  override readonly name = 'SchemaError';
}

export type Schema = (value: unknown, path: string) => void;

function fail(path: string, expected: string, value: unknown): never {
  throw new SchemaError(`${path}: expected ${expected}, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  if (typeof value === 'string') return `a string of ${value.length}`;
  return `${typeof value} ${String(value).slice(0, 32)}`;
}

/** Times and durations on the wire are non-negative nanoseconds below 2^53 (~104 days of uptime at 1 ns). */
export const MAX_NS = Number.MAX_SAFE_INTEGER;
/** No action runs, and no deadline lies, more than an hour out. */
export const MAX_DURATION_NS = 3_600e9;
/** Rows in one batch, entries in one list: far above any real batch, far below trouble. */
export const MAX_ROWS = 4096;
export const MAX_LIST = 1024;
export const MAX_ID_CHARS = 256;

export function str(maxChars = 4096): Schema {
  return (v, path) => {
    if (typeof v !== 'string' || v.length > maxChars) fail(path, `a string of at most ${maxChars} characters`, v);
  };
}

export function oneOf(...choices: string[]): Schema {
  return (v, path) => {
    if (typeof v !== 'string' || !choices.includes(v)) fail(path, `one of ${choices.join('|')}`, v);
  };
}

/** A finite number in [min, max]; `nan: true` also admits NaN (a feedback slot a row never reached). */
export function num(min = -Number.MAX_VALUE, max = Number.MAX_VALUE, options: { nan?: boolean } = {}): Schema {
  return (v, path) => {
    if (typeof v === 'number' && Number.isNaN(v) && options.nan) return;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(path, `a finite number in [${min}, ${max}]`, v);
  };
}

export function int(min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Schema {
  return (v, path) => {
    if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) fail(path, `an integer in [${min}, ${max}]`, v);
  };
}

export const bool: Schema = (v, path) => {
  if (typeof v !== 'boolean') fail(path, 'a boolean', v);
};

export function arrayOf(item: Schema, maxLength = MAX_LIST): Schema {
  return (v, path) => {
    if (!Array.isArray(v) || v.length > maxLength) fail(path, `an array of at most ${maxLength}`, v);
    for (let i = 0; i < v.length; i++) item(v[i], `${path}[${i}]`);
  };
}

/** A field that may be absent (undefined or null). */
export interface Optional {
  optional: Schema;
}

export function optional(schema: Schema): Optional {
  return { optional: schema };
}

/** A plain object with these fields; fields not named are allowed (and ignored by every handler). */
export function obj(fields: Record<string, Schema | Optional>, check?: (value: Record<string, unknown>, path: string) => void): Schema {
  const entries = Object.entries(fields);
  return (v, path) => {
    if (!isPlainObject(v)) fail(path, 'a map', v);
    const record = v as Record<string, unknown>;
    for (const [key, field] of entries) {
      const value = record[key];
      if (typeof field === 'function') field(value, `${path}.${key}`);
      else if (value !== undefined && value !== null) field.optional(value, `${path}.${key}`);
    }
    check?.(record, path);
  };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Only what JSON could say: maps, arrays, strings, numbers (NaN included), booleans and null,
 * nested at most `maxDepth` deep. msgpack extensions (BigInt, Date, Set, Map, Error, RegExp,
 * typed arrays, binary) fail here, wherever they hide.
 */
export function plainValue(v: unknown, path: string, maxDepth = 8): void {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
      return;
    case 'object':
      if (v === null) return;
      if (maxDepth <= 0) fail(path, 'at most 8 levels of nesting', v);
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) plainValue(v[i], `${path}[${i}]`, maxDepth - 1);
        return;
      }
      if (!isPlainObject(v)) fail(path, 'plain msgpack (no extension types)', v);
      for (const key of Object.keys(v)) plainValue((v as Record<string, unknown>)[key], `${path}.${key}`, maxDepth - 1);
      return;
    default:
      fail(path, 'plain msgpack (no extension types)', v);
  }
}

const ns = num(0, MAX_NS);
const durationNs = num(0, MAX_DURATION_NS);
const id = str(MAX_ID_CHARS);
const row = int(0, MAX_ROWS - 1);
const classIndex = int(-1, 1_000_000);
const confidence = num(0, 1, { nan: true });
const batchSize = int(1, MAX_ROWS);

const tensorMeta: Schema = obj({
  name: str(MAX_ID_CHARS),
  dtype: (v, p) => void (isDType(v) || fail(p, 'a dtype', v)),
  shape: (v, p) => void (isValidShape(v) || fail(p, 'a shape (at most 8 dims, each an integer ≥ 0)', v)),
});
const tensors = arrayOf(tensorMeta, 64);

/** Output tensors hold one row per answered request: their first dimension must say how many. */
function rowsOf(metas: unknown, numRows: number, path: string): void {
  for (const [i, m] of ((metas as { shape: number[] }[] | undefined) ?? []).entries()) {
    if (m.shape.length === 0 || m.shape[0] !== numRows) fail(`${path}[${i}].shape`, `first dimension ${numRows}`, m.shape[0]);
  }
}

const window = { actionId: int(0), earliestNs: ns, latestNs: ns, expectedDurationNs: durationNs, expectedStartNs: ns };

const timing = obj({ receivedNs: ns, startNs: ns, endNs: ns, durationNs, sentNs: ns }, (t, path) => {
  if ((t.startNs as number) > 0 && (t.endNs as number) < (t.startNs as number)) fail(`${path}.endNs`, `a time ≥ startNs (${t.startNs as number})`, t.endNs);
});

const feedback = obj(
  {
    siteIds: arrayOf(int(0, MAX_LIST), 64),
    confidences: arrayOf(arrayOf(confidence, MAX_ROWS), 64),
    predictions: arrayOf(arrayOf(classIndex, MAX_ROWS), 64),
    finalPredictions: arrayOf(classIndex, MAX_ROWS),
  },
  (f, path) => {
    const sites = (f.siteIds as number[]).length;
    const rows = (f.finalPredictions as number[]).length;
    for (const key of ['confidences', 'predictions'] as const) {
      const lists = f[key] as unknown[][];
      if (lists.length !== sites) fail(`${path}.${key}`, `one list per site (${sites})`, lists);
      lists.forEach((l, i) => l.length === rows || fail(`${path}.${key}[${i}]`, `one entry per row (${rows})`, l));
    }
  },
);

const earlyExitPlan = obj({
  mode: oneOf('release', 'compact'),
  ramps: arrayOf(obj({ siteId: int(0, MAX_LIST), threshold: num(0, 2) }), 64),
  keepRows: arrayOf(row, MAX_ROWS),
  fused: optional(bool),
});

export const MESSAGE_SCHEMAS: Record<AnyMessage['type'], Schema> = {
  hello: obj({
    v: int(),
    workerId: id,
    device: str(64),
    memoryBudgetBytes: num(0, 2 ** 52),
    pid: int(0),
    hostname: str(MAX_ID_CHARS),
    epoch: int(0),
    keyProof: optional(str(64)),
  }),
  hello_ack: obj({ v: int(), workerId: id, heartbeatIntervalMs: num(1, 60_000), epoch: int(0) }),
  reregister: obj({ reason: str(), epoch: int(0) }),
  heartbeat: obj({ workerId: id, epoch: int(0), numQueuedActions: int(0, 1_000_000), usedMemoryBytes: num(0, 2 ** 52), loadedModels: arrayOf(id) }),
  clock_ping: obj({ seq: int(0), t0Ns: ns }),
  clock_pong: obj({ seq: int(0), t0Ns: ns, t1Ns: ns, t2Ns: ns }),
  load: obj({ ...window, modelName: id, batchSizes: arrayOf(batchSize, 64) }),
  ramps: obj({ ...window, modelName: id, siteIds: arrayOf(int(0, MAX_LIST), 64), fused: optional(bool) }),
  unload: obj({ ...window, modelName: id }),
  infer: obj({
    ...window,
    modelName: id,
    batchSize,
    numRequests: batchSize,
    inputs: tensors,
    sequenceLength: optional(int(1, 1 << 20)),
    earlyExit: optional(earlyExitPlan),
  }),
  result: obj(
    {
      actionId: int(0),
      actionType: oneOf('load', 'unload', 'infer', 'ramps'),
      modelName: id,
      code: int(0, 65_535),
      timing,
      message: optional(str()),
      outputs: optional(tensors),
      profile: optional(arrayOf(obj({ batchSize, sequenceLength: optional(int(1, 1 << 20)), durationNs, p99DurationNs: durationNs }), 4096)),
      stages: optional(arrayOf(obj({ name: str(MAX_ID_CHARS), durationNs, numRows: optional(row) }), 256)),
      weightsBytes: optional(num(0, 2 ** 52)),
      outputRows: optional(arrayOf(row, MAX_ROWS)),
      feedback: optional(feedback),
    },
    (r, path) => {
      if (r.outputRows) rowsOf(r.outputs, (r.outputRows as number[]).length, `${path}.outputs`);
    },
  ),
  exit: obj(
    {
      actionId: int(0),
      modelName: id,
      siteId: int(0, MAX_LIST),
      rows: arrayOf(row, MAX_ROWS),
      confidences: arrayOf(num(0, 1), MAX_ROWS),
      predictions: arrayOf(classIndex, MAX_ROWS),
      atNs: ns,
      outputs: tensors,
    },
    (e, path) => {
      const rows = (e.rows as number[]).length;
      if ((e.confidences as number[]).length !== rows) fail(`${path}.confidences`, `one per row (${rows})`, e.confidences);
      if ((e.predictions as number[]).length !== rows) fail(`${path}.predictions`, `one per row (${rows})`, e.predictions);
      rowsOf(e.outputs, rows, `${path}.outputs`);
    },
  ),
  submit: obj({ requestId: id, model: id, inputs: tensors, sloMs: optional(num()), deadlineNs: optional(num()) }),
  response: obj({
    requestId: id,
    status: oneOf('OK', 'REJECTED', 'DEADLINE_MISSED', 'ERROR'),
    code: int(0, 65_535),
    arrivalNs: num(),
    deadlineNs: num(),
    completeNs: num(),
    outputs: optional(tensors),
    message: optional(str()),
  }),
  status_query: obj({ queryId: id }),
  status_reply: obj({ queryId: id, status: obj({}) }),
  configure: obj({
    queryId: id,
    policy: optional(str(64)),
    batchTimeoutMs: optional(num()),
    maxEnqueuedBatches: optional(num()),
    exitMode: optional(str(64)),
    thresholds: optional(str(16)),
    fixedThresholds: optional(obj({ model: str(256), thresholds: arrayOf(num(0, 2), 64) })),
    adjustRamps: optional(bool),
    adminToken: optional(str(256)),
  }),
  configure_reply: obj({ queryId: id, code: int(0, 65_535), message: optional(str()) }),
};
