/**
 * How this project writes contracts: a TypeBox schema is the one definition of a message, status
 * reply or manifest; its TypeScript type comes from it (`Static<typeof X>`) and so does its deep
 * validator (`validator(X)`, compiled once). Checks a schema cannot say (one entry per row, an
 * end after its start) are written beside it as a `refine` function.
 *
 * Peers are untrusted: numbers are finite unless a schema says otherwise (`numberOrNaN`), every
 * string and list has a bound, and a failure names the bad field (`result.timing.endNs: ...`).
 */
import { Kind, Type, TypeRegistry, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { DTYPE_BYTES, type DType } from './tensor.js';

export class SchemaError extends Error {
  override readonly name = 'SchemaError';
}

/** Times and durations on the wire are non-negative nanoseconds below 2^53 (~104 days of uptime at 1 ns). */
export const MAX_NS = Number.MAX_SAFE_INTEGER;
/** No action runs, and no deadline lies, more than an hour out. */
export const MAX_DURATION_NS = 3_600e9;
/** Rows in one batch, entries in one list: far above any real batch, far below trouble. */
export const MAX_ROWS = 4096;
export const MAX_LIST = 1024;
export const MAX_ID_CHARS = 256;

// ---------------------------------------------------------------------------------------------
// Building blocks

export const str = (maxLength = 4096) => Type.String({ maxLength });
export const int = (minimum = Number.MIN_SAFE_INTEGER, maximum = Number.MAX_SAFE_INTEGER) => Type.Integer({ minimum, maximum });
export const num = (minimum = -Number.MAX_VALUE, maximum = Number.MAX_VALUE) => Type.Number({ minimum, maximum });
export const list = <T extends TSchema>(item: T, maxItems = MAX_LIST) => Type.Array(item, { maxItems });

TypeRegistry.Set<{ minimum: number; maximum: number }>(
  'NumberOrNaN',
  (schema, value) => typeof value === 'number' && (Number.isNaN(value) || (value >= schema.minimum && value <= schema.maximum)),
);

/** A number in [minimum, maximum], or NaN (a slot with no value: a feedback row a ramp never saw, an estimate not yet made). */
export function numberOrNaN(minimum = -Number.MAX_VALUE, maximum = Number.MAX_VALUE): TUnsafe<number> {
  return Type.Unsafe<number>({ [Kind]: 'NumberOrNaN', minimum, maximum, description: `a number in [${minimum}, ${maximum}] or NaN` });
}

TypeRegistry.Set('AnyNumber', (_schema, value) => typeof value === 'number');

/** Any number, NaN and the infinities included: a measurement in a status reply (no samples yet, nothing free). */
export function anyNumber(): TUnsafe<number> {
  return Type.Unsafe<number>({ [Kind]: 'AnyNumber', description: 'a number' });
}

export const dtype = Type.Union(
  (Object.keys(DTYPE_BYTES) as DType[]).map((d) => Type.Literal(d)),
  { description: 'a dtype' },
);

/** Concrete dimensions: at most 8, each an integer >= 0. */
export const shape = Type.Array(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), { maxItems: 8 });

// ---------------------------------------------------------------------------------------------
// Validators

/** Checks a value deeply and returns it typed, or throws a `SchemaError` naming the first bad field. */
export type Validator<T> = (value: unknown, path: string) => T;

/** A compiled validator for `schema`; `refine` adds what the schema cannot say. */
export function validator<S extends TSchema>(schema: S, refine?: (value: Static<S>, path: string) => void): Validator<Static<S>> {
  const compiled = TypeCompiler.Compile(schema);
  return (value, path) => {
    if (!compiled.Check(value)) {
      const error = compiled.Errors(value).First();
      const at = error ? fieldPath(path, error.path) : path;
      const expected = error?.schema.description ?? error?.message ?? 'a valid value';
      throw new SchemaError(`${at}: ${expected}, got ${describe(error ? error.value : value)}`);
    }
    refine?.(value, path);
    return value;
  };
}

/** `/timing/endNs` under `result` reads `result.timing.endNs`; `/stages/0/durationNs`, `result.stages[0].durationNs`. */
function fieldPath(root: string, pointer: string): string {
  return (
    root +
    pointer
      .split('/')
      .slice(1)
      .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part.replace(/~1/g, '/').replace(/~0/g, '~')}`))
      .join('')
  );
}

/** Fails a refinement: `fail('result.outputs[0].shape', 'first dimension 2', 3)`. */
export function fail(path: string, expected: string, value: unknown): never {
  throw new SchemaError(`${path}: expected ${expected}, got ${describe(value)}`);
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  if (typeof value === 'string') return value.length <= 64 ? JSON.stringify(value) : `a string of ${value.length}`;
  return `${typeof value} ${String(value).slice(0, 32)}`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Only what JSON could say: maps, arrays, strings, numbers (NaN included), booleans and null,
 * nested at most `maxDepth` deep. msgpack extensions (BigInt, Date, Set, Map, Error, RegExp,
 * typed arrays, binary) fail here, wherever they hide. With `dropNulls`, a map's null fields are
 * deleted on the way (other encoders write nil for an absent optional field; schemas say absent).
 */
export function plainValue(v: unknown, path: string, maxDepth = 8, dropNulls = false): void {
  checkPlain(v, [path], maxDepth, dropNulls);
}

/**
 * plainValue's walk. The path is kept as segments and joined only for an error: building a
 * string per field cost the controller ~10 % of everything it allocated at 1,100 requests/s (a
 * result's exit feedback alone holds hundreds of numbers), and allocation is what its GC pauses
 * (each one a few ms of planning not done) are paid with.
 */
function checkPlain(v: unknown, path: (string | number)[], maxDepth: number, dropNulls: boolean): void {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
      return;
    case 'object':
      if (v === null) return;
      if (maxDepth <= 0) fail(joinPath(path), 'less nesting', v);
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const item: unknown = v[i];
          // Leaves need no path: only a nested value can fail.
          if (typeof item === 'number' || typeof item === 'string' || typeof item === 'boolean' || item === null) continue;
          path.push(i);
          checkPlain(item, path, maxDepth - 1, dropNulls);
          path.pop();
        }
        return;
      }
      if (!isPlainObject(v)) fail(joinPath(path), 'plain msgpack (no extension types)', v);
      for (const key in v) {
        if (!Object.hasOwn(v, key)) continue;
        const field = v[key];
        if (field === null) {
          if (dropNulls) delete v[key];
          continue;
        }
        if (typeof field === 'number' || typeof field === 'string' || typeof field === 'boolean') continue;
        path.push(key);
        checkPlain(field, path, maxDepth - 1, dropNulls);
        path.pop();
      }
      return;
    default:
      fail(joinPath(path), 'plain msgpack (no extension types)', v);
  }
}

/** `header.inputs[0].shape` from ['header', 'inputs', 0, 'shape']. */
function joinPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
