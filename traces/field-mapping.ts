/**
 * Which fields of a JSON-lines or CSV trace hold the arrival time (and in what unit), the model
 * and the SLO. Public traces name their time field differently (`timestamp_ms`, `timestamp` in
 * ms, `Timestamp` in s, `TIMESTAMP` as a date, `arrival_time`, …), so a mapping is detected from
 * the field names of the known layouts, or from a unit in the field's name, or from the value
 * itself when it is a date; a bare number in an unknown layout is never guessed: the user says
 * its unit (`--time-unit`). Anything given on the command line overrides what was detected.
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
import { parseAzureTimestamp } from './azure-llm-reader.js';
import { TraceFormatError, type Arrival, type BadRow } from './trace.js';

export const TIME_UNITS = ['ms', 's', 'us', 'ns', 'date'] as const;
export type TimeUnit = (typeof TIME_UNITS)[number];

export interface FieldMapping {
  timeField: string;
  timeUnit: TimeUnit;
  /** Field naming the model to call (absent: the replay's --model). */
  modelField?: string;
  /** Field holding the request's SLO in milliseconds (absent: the replay's SLO). */
  sloField?: string;
}

/** What the user said on the command line; each given field overrides detection. */
export type MappingOverrides = Partial<FieldMapping>;

const ALIBABA_PAI_JOB_COLUMNS = ['job_name', 'inst_id', 'user', 'status', 'start_time', 'end_time'];

/** A published trace layout, recognised by its field names. */
interface KnownLayout {
  name: string;
  kind: 'jsonl' | 'csv';
  fields: string[];
  mapping: FieldMapping;
}

// NOTE: only layouts whose time unit is documented by their publishers; anything else needs the
// unit from the user or in the field's name.
export const KNOWN_LAYOUTS: readonly KnownLayout[] = [
  {
    name: 'escapement',
    kind: 'jsonl',
    fields: ['timestamp_ms'],
    mapping: { timeField: 'timestamp_ms', timeUnit: 'ms', modelField: 'model', sloField: 'slo_ms' },
  },
  // Mooncake (FAST'25) traces: {"timestamp": ms since the trace's start, "input_length", "output_length", "hash_ids"}
  { name: 'mooncake', kind: 'jsonl', fields: ['timestamp', 'input_length', 'output_length'], mapping: { timeField: 'timestamp', timeUnit: 'ms' } },
  // BurstGPT: Timestamp (s since the trace's start),Model,Request tokens,Response tokens,Total tokens,Log Type
  { name: 'burstgpt', kind: 'csv', fields: ['Timestamp', 'Model', 'Request tokens', 'Response tokens'], mapping: { timeField: 'Timestamp', timeUnit: 's' } },
  // Azure LLM inference 2023/2024 read as CSV: TIMESTAMP is a UTC date
  { name: 'azure-llm', kind: 'csv', fields: ['TIMESTAMP', 'ContextTokens', 'GeneratedTokens'], mapping: { timeField: 'TIMESTAMP', timeUnit: 'date' } },
  // Alibaba cluster-trace-gpu-v2023 pod lists (openb_pod_list_*.csv): creation_time in s from the trace's start
  {
    name: 'alibaba-gpu-2023',
    kind: 'csv',
    fields: ['name', 'cpu_milli', 'num_gpu', 'gpu_milli', 'creation_time'],
    mapping: { timeField: 'creation_time', timeUnit: 's' },
  },
  // Alibaba cluster-trace-gpu-v2020 (PAI) job table, pai_job_table.header's columns: start_time in s
  { name: 'alibaba-pai-2020', kind: 'csv', fields: ALIBABA_PAI_JOB_COLUMNS, mapping: { timeField: 'start_time', timeUnit: 's' } },
];

/**
 * Layouts published without a header row, recognised by their first row's values (the 2020 PAI
 * tables ship their column names in separate `.header` files).
 */
export const HEADERLESS_LAYOUTS: readonly { name: string; columns: readonly string[]; matches: (cells: readonly string[]) => boolean }[] = [
  {
    name: 'alibaba-pai-2020',
    columns: ALIBABA_PAI_JOB_COLUMNS,
    matches: (cells) => cells.length === 6 && /^(Terminated|Failed|Running|Waiting)$/.test(cells[3]!) && /^\d+(\.\d+)?$/.test(cells[4]!),
  },
];

/** Time field names tried, in order, when no layout matches. */
const TIME_FIELD_NAMES = ['timestamp', 'time', 'arrival_time', 'arrival', 'submit_time', 'start_time', 'created', 'date'];
const UNIT_SUFFIX = /(?:^|[_-])(ms|s|sec|us|ns)$/i;

export class TraceMappingError extends CodedError {
  override readonly name = 'TraceMappingError';
  readonly code = ErrorCode.TRACE_INVALID;
}

export function isTraceMappingError(err: unknown): err is TraceMappingError {
  return err instanceof TraceMappingError;
}

function unitFromName(field: string): TimeUnit | undefined {
  const unit = UNIT_SUFFIX.exec(field)?.[1]?.toLowerCase();
  if (unit === 'sec') return 's';
  return unit as TimeUnit | undefined;
}

/**
 * The mapping for a trace whose records have these field names, `firstValue` being the first
 * record's value of a field. Throws a TraceMappingError that says what to give when it cannot tell.
 */
export function detectMapping(
  kind: 'jsonl' | 'csv',
  fields: readonly string[],
  firstValue: (field: string) => unknown,
  overrides: MappingOverrides = {},
): { mapping: FieldMapping; layout: string } {
  const has = new Set(fields);
  const layout = KNOWN_LAYOUTS.find((l) => l.kind === kind && l.fields.every((f) => has.has(f)));
  const detected: Partial<FieldMapping> = layout ? { ...layout.mapping } : {};
  const timeField = overrides.timeField ?? detected.timeField ?? findTimeField(fields);
  if (timeField === undefined) {
    throw new TraceMappingError(
      `no arrival-time field among [${fields.join(', ')}]; name it with --time-field and its unit with --time-unit ${TIME_UNITS.join('|')}`,
    );
  }
  if (!has.has(timeField)) throw new TraceMappingError(`--time-field '${timeField}' is not a field of this trace [${fields.join(', ')}]`);
  let timeUnit = overrides.timeUnit ?? (timeField === detected.timeField ? detected.timeUnit : undefined) ?? unitFromName(timeField);
  if (timeUnit === undefined) {
    const value = firstValue(timeField);
    if (typeof value === 'string' && !isNumeric(value) && parseDateMs(value) !== undefined) timeUnit = 'date';
    else
      throw new TraceMappingError(
        `field '${timeField}' holds numbers (e.g. ${JSON.stringify(value)}) in a unit this trace does not say; give --time-unit ms|s|us|ns`,
      );
  }
  const mapping: FieldMapping = { timeField, timeUnit };
  // A layout's model and SLO fields are optional on each record, so they map even when the first lacks them.
  const modelField = overrides.modelField ?? detected.modelField;
  const sloField = overrides.sloField ?? detected.sloField;
  for (const [flag, field] of [
    ['--model-field', overrides.modelField],
    ['--slo-field', overrides.sloField],
  ] as const) {
    if (field !== undefined && !has.has(field)) throw new TraceMappingError(`${flag} '${field}' is not a field of this trace [${fields.join(', ')}]`);
  }
  if (modelField) mapping.modelField = modelField;
  if (sloField) mapping.sloField = sloField;
  return { mapping, layout: layout?.name ?? 'custom' };
}

function findTimeField(fields: readonly string[]): string | undefined {
  const withUnit = fields.find((f) => unitFromName(f) !== undefined && /^(t|ts)[_-]|time|stamp|arrival|sent|submit|start/i.test(f));
  if (withUnit) return withUnit;
  for (const name of TIME_FIELD_NAMES) {
    const found = fields.find((f) => f.toLowerCase() === name);
    if (found) return found;
  }
  return undefined;
}

function isNumeric(text: string): boolean {
  return text.trim() !== '' && Number.isFinite(Number(text));
}

/** Milliseconds since the epoch of a date: the Azure form (100 ns digits) or ISO 8601. */
function parseDateMs(text: string): number | undefined {
  const azure = parseAzureTimestamp(text);
  if (azure !== undefined) return azure;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

const MS_PER_UNIT: Record<Exclude<TimeUnit, 'date'>, number> = { ms: 1, s: 1000, us: 1e-3, ns: 1e-6 };

/** A record's time in ms (on the trace's own origin), or why it cannot be read. */
export function timeMsOf(value: unknown, unit: TimeUnit): number | string {
  if (unit === 'date') {
    const ms = typeof value === 'string' ? parseDateMs(value) : undefined;
    return ms ?? `unreadable date ${JSON.stringify(value)}`;
  }
  const n = typeof value === 'number' ? value : typeof value === 'string' && isNumeric(value) ? Number(value) : Number.NaN;
  if (!Number.isFinite(n)) return `time must be a number of ${unit}, got ${JSON.stringify(value)}`;
  return n * MS_PER_UNIT[unit];
}

/** One record of a trace: its line number and its fields. */
export interface TraceRecord {
  line: number;
  fields: Record<string, unknown>;
}

export interface MappedArrivals {
  arrivals: Arrival[];
  badRows: BadRow[];
  /** Records whose time was earlier than the one before them (the arrivals are sorted). */
  numOutOfOrder: number;
}

/** Applies a mapping to records: arrivals in time order from the first one, and every bad row. */
export function mapRecords(records: readonly TraceRecord[], mapping: FieldMapping): MappedArrivals {
  const badRows: BadRow[] = [];
  const timed: { timeMs: number; arrival: Arrival }[] = [];
  let numOutOfOrder = 0;
  for (const { line, fields } of records) {
    const timeMs = timeMsOf(fields[mapping.timeField], mapping.timeUnit);
    if (typeof timeMs === 'string') {
      badRows.push({ line, message: `"${mapping.timeField}": ${timeMs}` });
      continue;
    }
    const arrival: Arrival = { timeMs };
    // NOTE: a record without the model or SLO field (or an empty CSV cell) uses the replay's own.
    const absent = (field: string) => fields[field] === undefined || fields[field] === '';
    if (mapping.modelField !== undefined && !absent(mapping.modelField)) {
      const model = fields[mapping.modelField];
      if (typeof model !== 'string') {
        badRows.push({ line, message: `"${mapping.modelField}" must be a model name` });
        continue;
      }
      arrival.model = model;
    }
    if (mapping.sloField !== undefined && !absent(mapping.sloField)) {
      const raw = fields[mapping.sloField];
      const sloMs = typeof raw === 'number' ? raw : typeof raw === 'string' && isNumeric(raw) ? Number(raw) : Number.NaN;
      if (!(sloMs > 0) || !Number.isFinite(sloMs)) {
        badRows.push({ line, message: `"${mapping.sloField}" must be a positive number of ms` });
        continue;
      }
      arrival.sloMs = sloMs;
    }
    if (timed.length > 0 && timeMs < timed.at(-1)!.timeMs) numOutOfOrder++;
    timed.push({ timeMs, arrival });
  }
  // NOTE: a stable sort keeps ties in file order.
  timed.sort((a, b) => a.timeMs - b.timeMs);
  const firstMs = timed[0]?.timeMs ?? 0;
  return { arrivals: timed.map((t) => ({ ...t.arrival, timeMs: t.timeMs - firstMs })), badRows, numOutOfOrder };
}

/** A trace read through a field mapping: its arrivals, and how they were read. */
export interface MappedTrace {
  arrivals: Arrival[];
  mapping: FieldMapping;
  /** The known layout that matched, or 'custom'. */
  layout: string;
  /** Rows whose time went backwards (the arrivals are sorted). */
  numOutOfOrder: number;
}

/**
 * The arrivals of a file's records (`fields`: its field names), with the rows its reader already
 * found bad: the mapping is detected (or given), applied, and every bad row reported at once.
 */
export function readMapped(
  path: string,
  kind: 'jsonl' | 'csv',
  fields: readonly string[],
  records: readonly TraceRecord[],
  bad: BadRow[],
  overrides: MappingOverrides,
): MappedTrace {
  let detected;
  try {
    detected = detectMapping(kind, fields, (f) => records[0]?.fields[f], overrides);
  } catch (err) {
    if (err instanceof TraceMappingError) throw new TraceMappingError(`${path}: ${err.message}`);
    throw err;
  }
  const mapped = mapRecords(records, detected.mapping);
  const allBad = [...bad, ...mapped.badRows].sort((a, b) => a.line - b.line);
  if (allBad.length > 0) throw new TraceFormatError(path, allBad);
  return { arrivals: mapped.arrivals, mapping: detected.mapping, layout: detected.layout, numOutOfOrder: mapped.numOutOfOrder };
}
