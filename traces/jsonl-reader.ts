/**
 * JSON-lines traces: one object per line. Which keys hold the time (and its unit), the model and
 * the SLO comes from field-mapping.ts: detected (Escapement's own `timestamp_ms`/`model`/`slo_ms`,
 * Mooncake's `timestamp` in ms, a unit in the key's name, a date value) or given by the user.
 */
import { readMapped, type MappedTrace, type MappingOverrides, type TraceRecord } from './field-mapping.js';
import { numberedLines, TraceFormatError, type BadRow } from './trace.js';

export function readJsonlTrace(text: string, path = 'trace', overrides: MappingOverrides = {}): MappedTrace {
  const bad: BadRow[] = [];
  const records: TraceRecord[] = [];
  for (const { line, text: row } of numberedLines(text)) {
    let value: unknown;
    try {
      value = JSON.parse(row);
    } catch {
      bad.push({ line, message: 'not valid JSON' });
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) bad.push({ line, message: 'not a JSON object' });
    else records.push({ line, fields: value as Record<string, unknown> });
  }
  const first = records[0];
  if (!first) throw new TraceFormatError(path, bad.length > 0 ? bad : [{ line: 1, message: 'no records' }]);
  return readMapped(path, 'jsonl', Object.keys(first.fields), records, bad, overrides);
}
