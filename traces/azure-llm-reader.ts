/**
 * The Azure LLM inference trace format (2023/2024): `TIMESTAMP,ContextTokens,GeneratedTokens`, one
 * row per request, timestamps like `2023-11-16 18:15:46.6805900` (UTC, 100 ns digits).
 */
import { numberedLines, TraceFormatError, type Arrival, type BadRow } from './trace.js';

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/;

/** Milliseconds since the Unix epoch (fractional), or undefined if malformed. */
export function parseAzureTimestamp(text: string): number | undefined {
  const m = TIMESTAMP.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return undefined;
  return ms + (frac ? Number(`0.${frac}`) * 1000 : 0);
}

export function readAzureLlmTrace(text: string, path = 'trace'): Arrival[] {
  const lines = numberedLines(text);
  const header = lines.shift();
  if (!header || !/^TIMESTAMP,ContextTokens,GeneratedTokens$/i.test(header.text.trim())) {
    throw new TraceFormatError(path, [{ line: header?.line ?? 1, message: 'expected the header TIMESTAMP,ContextTokens,GeneratedTokens' }]);
  }
  const bad: BadRow[] = [];
  const times: number[] = [];
  for (const { line, text: row } of lines) {
    const cells = row.split(',');
    if (cells.length !== 3) {
      bad.push({ line, message: `expected 3 columns, got ${cells.length}` });
      continue;
    }
    const t = parseAzureTimestamp(cells[0]!);
    if (t === undefined) bad.push({ line, message: `unreadable timestamp '${cells[0]}'` });
    else if (!/^\d+$/.test(cells[1]!.trim()) || !/^\d+$/.test(cells[2]!.trim())) bad.push({ line, message: 'token counts must be non-negative integers' });
    else if (times.length > 0 && t < times.at(-1)!) bad.push({ line, message: 'timestamp goes backwards' });
    else times.push(t);
  }
  if (bad.length > 0) throw new TraceFormatError(path, bad);
  const first = times[0] ?? 0;
  return times.map((t) => ({ timeMs: t - first }));
}
