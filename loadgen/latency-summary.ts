/** Latency percentiles and status counts over a set of answered requests. */
import * as hdr from 'hdr-histogram-js';
import type { InferResponse } from '../client/escapement-client.js';

export interface LatencySummary {
  numRequests: number;
  byStatus: Record<string, number>;
  /** Fraction of requests answered OK (i.e. within their deadline). */
  sloAttainment: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanBatchSize: number;
}

/** Percentiles of latencies in ms (recorded at µs resolution, 3 significant digits). */
export function percentilesMs(latenciesMs: readonly number[]): { p50Ms: number; p90Ms: number; p99Ms: number; p999Ms: number; maxMs: number } {
  const h = hdr.build({ numberOfSignificantValueDigits: 3 });
  for (const ms of latenciesMs) h.recordValue(Math.max(1, Math.round(ms * 1000)));
  const at = (p: number) => (latenciesMs.length === 0 ? NaN : h.getValueAtPercentile(p) / 1000);
  return { p50Ms: at(50), p90Ms: at(90), p99Ms: at(99), p999Ms: at(99.9), maxMs: latenciesMs.length === 0 ? NaN : Math.max(...latenciesMs) };
}

export function summarize(responses: readonly InferResponse[]): LatencySummary {
  const byStatus: Record<string, number> = {};
  for (const r of responses) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  const batches = responses.filter((r) => r.batchSize !== undefined).map((r) => r.batchSize!);
  return {
    numRequests: responses.length,
    byStatus,
    sloAttainment: responses.length === 0 ? NaN : (byStatus.OK ?? 0) / responses.length,
    ...percentilesMs(responses.map((r) => r.clientLatencyMs)),
    meanBatchSize: batches.length === 0 ? NaN : batches.reduce((a, b) => a + b, 0) / batches.length,
  };
}

export function formatTable(rows: Record<string, string | number>[]): string {
  if (rows.length === 0) return '';
  const keys = Object.keys(rows[0]!);
  const cell = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v);
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k] ?? '').length)));
  const line = (values: string[]) => values.map((v, i) => v.padStart(widths[i]!)).join('  ');
  return [line(keys), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(keys.map((k) => cell(r[k] ?? ''))))].join('\n');
}
