/**
 * What a replay leaves in its output folder:
 * - `requests.csv`: one row per request (arrival_ns, request_id, model, slo_ms, deadline_ns,
 *   complete_ns, latency_ms, status, exit_ramp, batch_size, worker, correct);
 * - `summary.json`: percentiles, SLO attainment, goodput, counts, exits per ramp, agreement,
 *   accuracy, schedule lag;
 * - `latency.hdr`: the latency histogram (µs) as HdrHistogram's compressed base64, for tools
 *   that merge and re-slice histograms;
 * - `locust_stats.csv` and `perf_analyzer.csv`: the same summary in the column layouts of Locust
 *   and Triton's perf_analyzer, so existing parsers work.
 */
import { formatTable } from './latency-summary.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as hdr from 'hdr-histogram-js';
import type { ReplayRecord, ReplayResult } from './replay.js';

export interface ReplaySummary {
  numRequests: number;
  durationSec: number;
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
  /** Share of requests answered OK whose answer reached the client by its deadline. */
  sloAttainment: number;
  /** Requests per second that met their deadline. */
  goodputRps: number;
  throughputRps: number;
  /** Requests that met their SLO (answered OK, on time at the client). */
  numOk: number;
  numRejected: number;
  /** Answered after the deadline: the server said so, or its OK reached the client late. */
  numMissed: number;
  /** Of those, the ones the server judged on time but whose answer reached the client late. */
  numLate: number;
  numErrors: number;
  exitFraction: number;
  exitFractions: Record<string, number>;
  /** Agreement of the answers with the full model (when reference predictions were known). */
  agreement?: number;
  accuracy?: number;
  scheduleLagP99Ms: number;
  scheduleLagMaxMs: number;
  /** The same measures over consecutive windows of the run (by scheduled arrival): how they moved. */
  windows: WindowSummary[];
}

export interface WindowSummary {
  startS: number;
  endS: number;
  numRequests: number;
  sloAttainment: number;
  exitFraction: number;
  agreement?: number;
  accuracy?: number;
  p50Ms: number;
  p99Ms: number;
}

/** The windows of one or more runs side by side: a row per window, columns per run. */
export function windowTable(runs: { label: string; summary: ReplaySummary }[]): string {
  const first = runs[0]?.summary.windows ?? [];
  const pct = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '' : (100 * v).toFixed(1));
  const rows = first.map((w, k) => {
    const row: Record<string, string | number> = { window: `${w.startS.toFixed(1)}-${w.endS.toFixed(1)} s` };
    for (const { label, summary } of runs) {
      const x = summary.windows[k];
      if (!x) continue;
      row[`${label} slo %`] = pct(x.sloAttainment);
      row[`${label} p50`] = Number.isNaN(x.p50Ms) ? '' : x.p50Ms.toFixed(2);
      row[`${label} exit %`] = pct(x.exitFraction);
      row[`${label} agree %`] = pct(x.agreement);
      row[`${label} acc %`] = pct(x.accuracy);
    }
    return row;
  });
  return formatTable(rows);
}

/** Number of windows a run is cut into for `windows`. */
export const NUM_WINDOWS = 10;

/** The window of an arrival `offsetNs` after the run's start, when the last one is `lastOffsetNs` after it. */
export function windowOfArrival(offsetNs: number, lastOffsetNs: number, numWindows = NUM_WINDOWS): number {
  const spanNs = Math.max(1, lastOffsetNs + 1);
  return Math.min(numWindows - 1, Math.max(0, Math.floor((offsetNs / spanNs) * numWindows)));
}

/** Per-window measures, the run cut by scheduled arrival into `numWindows` equal spans. */
export function windowsOf(records: readonly ReplayRecord[], startNs: number, numWindows = NUM_WINDOWS): WindowSummary[] {
  if (records.length === 0) return [];
  const lastNs = records.reduce((m, r) => Math.max(m, r.arrivalNs), startNs);
  const spanNs = Math.max(1, lastNs - startNs + 1);
  const buckets: ReplayRecord[][] = Array.from({ length: numWindows }, () => []);
  for (const r of records) buckets[windowOfArrival(r.arrivalNs - startNs, lastNs - startNs, numWindows)]!.push(r);
  return buckets.map((rs, k) => {
    const ok = rs.filter((r) => r.status === 'OK');
    const latencies = rs
      .filter((r) => r.status === 'OK' || r.status === 'DEADLINE_MISSED')
      .map((r) => r.latencyMs)
      .sort((a, b) => a - b);
    const pick = (q: number) => (latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!);
    const withReference = rs.filter((r) => r.agrees !== undefined);
    const withLabel = rs.filter((r) => r.correct !== undefined);
    const w: WindowSummary = {
      startS: (k * spanNs) / numWindows / 1e9,
      endS: ((k + 1) * spanNs) / numWindows / 1e9,
      numRequests: rs.length,
      sloAttainment: rs.length === 0 ? NaN : rs.filter((r) => r.metSlo).length / rs.length,
      exitFraction: ok.length === 0 ? 0 : ok.filter((r) => r.early).length / ok.length,
      p50Ms: pick(0.5),
      p99Ms: pick(0.99),
    };
    if (withReference.length > 0) w.agreement = withReference.filter((r) => r.agrees).length / withReference.length;
    if (withLabel.length > 0) w.accuracy = withLabel.filter((r) => r.correct).length / withLabel.length;
    return w;
  });
}

function histogramOf(valuesMs: readonly number[]) {
  const h = hdr.build({ numberOfSignificantValueDigits: 3 });
  for (const ms of valuesMs) h.recordValue(Math.max(1, Math.round(ms * 1000)));
  return h;
}

export function summarizeReplay(result: ReplayResult): ReplaySummary {
  const records = result.records;
  const ok = records.filter((r) => r.status === 'OK');
  const met = ok.filter((r) => r.metSlo);
  const answeredLatencies = records.filter((r) => r.status === 'OK' || r.status === 'DEADLINE_MISSED').map((r) => r.latencyMs);
  const h = histogramOf(answeredLatencies);
  const at = (p: number) => (answeredLatencies.length === 0 ? NaN : h.getValueAtPercentile(p) / 1000);
  const lag = histogramOf(records.map((r) => Math.max(0, r.scheduleLagMs)));
  const withReference = records.filter((r) => r.agrees !== undefined);
  const withLabel = records.filter((r) => r.correct !== undefined);
  const exitFractions: Record<string, number> = {};
  for (const r of ok) if (r.early && r.exitRamp !== undefined) exitFractions[r.exitRamp] = (exitFractions[r.exitRamp] ?? 0) + 1 / Math.max(1, ok.length);
  const summary: ReplaySummary = {
    numRequests: records.length,
    durationSec: result.durationSec,
    p50Ms: at(50),
    p90Ms: at(90),
    p95Ms: at(95),
    p99Ms: at(99),
    p999Ms: at(99.9),
    maxMs: answeredLatencies.length === 0 ? NaN : answeredLatencies.reduce((m, v) => Math.max(m, v), 0),
    meanMs: answeredLatencies.length === 0 ? NaN : answeredLatencies.reduce((a, b) => a + b, 0) / answeredLatencies.length,
    sloAttainment: records.length === 0 ? NaN : met.length / records.length,
    goodputRps: met.length / result.durationSec,
    throughputRps: answeredLatencies.length / result.durationSec,
    numOk: met.length,
    numRejected: records.filter((r) => r.status === 'REJECTED').length,
    numMissed: records.filter((r) => r.status === 'DEADLINE_MISSED').length + ok.length - met.length,
    numLate: ok.length - met.length,
    numErrors: records.filter((r) => r.status === 'ERROR').length,
    exitFraction: ok.length === 0 ? 0 : ok.filter((r) => r.early).length / ok.length,
    exitFractions,
    scheduleLagP99Ms: lag.getValueAtPercentile(99) / 1000,
    scheduleLagMaxMs: records.reduce((m, r) => Math.max(m, r.scheduleLagMs), 0),
    windows: windowsOf(records, result.startNs),
  };
  if (withReference.length > 0) summary.agreement = withReference.filter((r) => r.agrees).length / withReference.length;
  if (withLabel.length > 0) summary.accuracy = withLabel.filter((r) => r.correct).length / withLabel.length;
  return summary;
}

const REQUEST_COLUMNS = [
  'arrival_ns',
  'request_id',
  'model',
  'slo_ms',
  'deadline_ns',
  'complete_ns',
  'latency_ms',
  'status',
  'exit_ramp',
  'batch_size',
  'worker',
  'correct',
];

function requestRow(r: ReplayRecord): string {
  return [
    Math.round(r.arrivalNs),
    r.requestId,
    r.model,
    r.sloMs,
    Math.round(r.deadlineNs),
    Math.round(r.completeNs),
    r.latencyMs.toFixed(4),
    r.status,
    r.exitRamp ?? '',
    r.batchSize ?? '',
    r.worker ?? '',
    r.correct === undefined ? '' : r.correct ? 1 : 0,
  ].join(',');
}

const LOCUST_HEADER =
  'Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max ' +
  'Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%';

export function writeReplayReport(outDir: string, result: ReplayResult, name: string): ReplaySummary {
  mkdirSync(outDir, { recursive: true });
  const summary = summarizeReplay(result);
  writeFileSync(join(outDir, 'requests.csv'), [REQUEST_COLUMNS.join(','), ...result.records.map(requestRow)].join('\n') + '\n');
  writeFileSync(join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  const answered = result.records.filter((r) => r.status === 'OK' || r.status === 'DEADLINE_MISSED').map((r) => r.latencyMs);
  const h = histogramOf(answered);
  writeFileSync(join(outDir, 'latency.hdr'), `${hdr.encodeIntoCompressedBase64(h)}\n`);
  const pct = (p: number) => (answered.length === 0 ? 0 : Math.round(h.getValueAtPercentile(p) / 1000));
  const failures = summary.numRequests - summary.numOk;
  const row = (type: string, rowName: string) =>
    [
      type,
      rowName,
      summary.numRequests,
      failures,
      pct(50),
      summary.meanMs.toFixed(2),
      answered.length ? Math.min(...answered).toFixed(2) : 0,
      summary.maxMs.toFixed(2),
      0,
      summary.throughputRps.toFixed(2),
      (failures / summary.durationSec).toFixed(2),
      ...[50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100].map(pct),
    ].join(',');
  writeFileSync(join(outDir, 'locust_stats.csv'), `${LOCUST_HEADER}\n${row('INFER', name)}\n${row('', 'Aggregated')}\n`);
  const us = (ms: number) => Math.round(ms * 1000);
  writeFileSync(
    join(outDir, 'perf_analyzer.csv'),
    'Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server ' +
      'Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n' +
      // Open-loop replays have no fixed concurrency, and the per-stage split is not measured on the client: 0.
      `0,${summary.throughputRps.toFixed(2)},0,0,0,0,0,0,0,${us(summary.p50Ms)},${us(summary.p90Ms)},${us(summary.p95Ms)},${us(summary.p99Ms)}\n`,
  );
  return summary;
}
