/**
 * Azure Functions traces.
 * - 2019 per-minute counts (`invocations_per_function_md.anon.dNN.csv`):
 *   `HashOwner,HashApp,HashFunction,Trigger,1,…,1440`, one row per function.
 * - 2021 per invocation: `app,func,end_timestamp,duration` (seconds, floats);
 *   arrival = end_timestamp − duration.
 */
import { numberedLines, TraceFormatError, type Arrival, type BadRow } from './trace.js';

export interface FunctionCounts {
  /** owner/app/function hashes joined. */
  id: string;
  trigger: string;
  /** Invocations per minute. */
  counts: number[];
}

export function readAzureFunctions2019(text: string, path = 'trace'): FunctionCounts[] {
  const lines = numberedLines(text);
  const header = lines.shift();
  const columns = header?.text.split(',') ?? [];
  if (!header || columns.slice(0, 4).join(',') !== 'HashOwner,HashApp,HashFunction,Trigger' || columns.length < 5) {
    throw new TraceFormatError(path, [{ line: header?.line ?? 1, message: 'expected the header HashOwner,HashApp,HashFunction,Trigger,1,…,N' }]);
  }
  const numMinutes = columns.length - 4;
  const bad: BadRow[] = [];
  const functions: FunctionCounts[] = [];
  for (const { line, text: row } of lines) {
    const cells = row.split(',');
    if (cells.length !== columns.length) {
      bad.push({ line, message: `expected ${columns.length} columns (4 ids + ${numMinutes} minutes), got ${cells.length}` });
      continue;
    }
    const counts = cells.slice(4).map((c) => (/^\d+$/.test(c.trim()) ? Number(c) : NaN));
    const badMinute = counts.findIndex((c) => Number.isNaN(c));
    if (badMinute >= 0) {
      bad.push({ line, message: `minute ${badMinute + 1} has '${cells[4 + badMinute]}', not a count` });
      continue;
    }
    functions.push({ id: cells.slice(0, 3).join('/'), trigger: cells[3]!, counts });
  }
  if (bad.length > 0) throw new TraceFormatError(path, bad);
  return functions;
}

export function readAzureFunctions2021(text: string, path = 'trace'): Arrival[] {
  const lines = numberedLines(text);
  const header = lines.shift();
  if (!header || header.text.trim() !== 'app,func,end_timestamp,duration') {
    throw new TraceFormatError(path, [{ line: header?.line ?? 1, message: 'expected the header app,func,end_timestamp,duration' }]);
  }
  const bad: BadRow[] = [];
  const rows: { startS: number; source: string }[] = [];
  for (const { line, text: row } of lines) {
    const cells = row.split(',');
    if (cells.length !== 4) {
      bad.push({ line, message: `expected 4 columns, got ${cells.length}` });
      continue;
    }
    const end = Number(cells[2]);
    const duration = Number(cells[3]);
    if (!Number.isFinite(end) || !Number.isFinite(duration) || duration < 0) {
      bad.push({ line, message: 'end_timestamp and duration must be numbers (seconds), duration ≥ 0' });
      continue;
    }
    rows.push({ startS: end - duration, source: `${cells[0]}/${cells[1]}` });
  }
  if (bad.length > 0) throw new TraceFormatError(path, bad);
  rows.sort((a, b) => a.startS - b.startS);
  const first = rows[0]?.startS ?? 0;
  return rows.map((r) => ({ timeMs: (r.startS - first) * 1000, source: r.source }));
}
