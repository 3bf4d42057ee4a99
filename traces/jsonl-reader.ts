/** A simple JSON-lines trace: one `{"timestamp_ms": number, "model"?: string, "slo_ms"?: number}` per line. */
import { numberedLines, TraceFormatError, type Arrival, type BadRow } from './trace.js';

export function readJsonlTrace(text: string, path = 'trace'): Arrival[] {
  const bad: BadRow[] = [];
  const arrivals: Arrival[] = [];
  for (const { line, text: row } of numberedLines(text)) {
    let value: unknown;
    try {
      value = JSON.parse(row);
    } catch {
      bad.push({ line, message: 'not valid JSON' });
      continue;
    }
    const v = value as Record<string, unknown>;
    if (typeof v !== 'object' || v === null || typeof v.timestamp_ms !== 'number' || !Number.isFinite(v.timestamp_ms)) {
      bad.push({ line, message: 'needs a numeric "timestamp_ms"' });
      continue;
    }
    if (v.model !== undefined && typeof v.model !== 'string') {
      bad.push({ line, message: '"model" must be a string' });
      continue;
    }
    if (v.slo_ms !== undefined && (typeof v.slo_ms !== 'number' || !(v.slo_ms > 0))) {
      bad.push({ line, message: '"slo_ms" must be a positive number' });
      continue;
    }
    const arrival: Arrival = { timeMs: v.timestamp_ms };
    if (typeof v.model === 'string') arrival.model = v.model;
    if (typeof v.slo_ms === 'number') arrival.sloMs = v.slo_ms;
    arrivals.push(arrival);
  }
  if (bad.length > 0) throw new TraceFormatError(path, bad);
  arrivals.sort((a, b) => a.timeMs - b.timeMs);
  const first = arrivals[0]?.timeMs ?? 0;
  return arrivals.map((a) => ({ ...a, timeMs: a.timeMs - first }));
}
