/**
 * CSV traces with a header row (RFC 4180 quoting). Which columns hold the time (and its unit), the
 * model and the SLO comes from field-mapping.ts: detected (BurstGPT's `Timestamp` in s, the Azure
 * LLM traces' `TIMESTAMP` dates, a unit in the column's name, a date value) or given by the user.
 */
import { HEADERLESS_LAYOUTS, readMapped, type MappedTrace, type MappingOverrides, type TraceRecord } from './field-mapping.js';
import { numberedLines, TraceFormatError, type BadRow } from './trace.js';

/** Splits one CSV line into cells; undefined when a quoted cell does not close. */
export function splitCsvLine(line: string): string[] | undefined {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  if (quoted) return undefined;
  cells.push(cell);
  return cells.map((x) => x.trim());
}

export function readCsvTrace(text: string, path = 'trace', overrides: MappingOverrides = {}): MappedTrace {
  const lines = numberedLines(text);
  const first = lines[0] ? splitCsvLine(lines[0].text) : undefined;
  const headerless = first ? HEADERLESS_LAYOUTS.find((l) => l.matches(first)) : undefined;
  const header = headerless ? { line: 0, text: headerless.columns.join(',') } : lines.shift();
  const names = header ? splitCsvLine(header.text) : undefined;
  if (!header || !names || names.some((n) => n === ''))
    throw new TraceFormatError(path, [{ line: header?.line ?? 1, message: 'expected a header row naming every column' }]);
  const bad: BadRow[] = [];
  const records: TraceRecord[] = [];
  for (const { line, text: row } of lines) {
    const cells = splitCsvLine(row);
    if (!cells) bad.push({ line, message: 'a quoted cell does not close' });
    else if (cells.length !== names.length) bad.push({ line, message: `expected ${names.length} columns, got ${cells.length}` });
    else records.push({ line, fields: Object.fromEntries(names.map((n, i) => [n, cells[i]!])) });
  }
  return readMapped(path, 'csv', names, records, bad, overrides);
}
