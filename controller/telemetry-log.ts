/**
 * Per-request and per-action CSV logs (Clockwork's two telemetry tables), so prediction error,
 * completion error and goodput can be analysed after a run. Times are ms relative to the
 * controller's start, durations in ms.
 *
 * Failure: a log that cannot be written (a full disk, a removed directory) stops every log, once,
 * with one line through `onFailure`; serving goes on, and the rows not written are counted
 * (`droppedRows`). Unhandled, a write stream's error event killed the controller.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { ActionRecord } from './result-folding.js';
import type { ThresholdChange } from './exit-monitor.js';
import type { StageTiming } from '../shared/protocol.js';

export const REQUEST_LOG_COLUMNS = [
  't_ms',
  'request_id',
  'model',
  'status',
  'code',
  'arrival_ms',
  'deadline_ms',
  'complete_ms',
  'latency_ms',
  'slo_ms',
  'deadline_met',
  'worker',
  'batch_size',
  'action_id',
  'predicted_complete_ms',
  // admitted requests: queued requests ahead of it at arrival (the queue admission drained)
  'rows_ahead',
] as const;
export const ACTION_LOG_COLUMNS = [
  't_ms',
  'action_id',
  'action_type',
  'code',
  'worker',
  'model',
  'batch_size',
  'num_requests',
  'expected_start_ms',
  'actual_start_ms',
  'start_lateness_ms',
  'expected_duration_ms',
  'actual_duration_ms',
  'expected_complete_ms',
  'actual_complete_ms',
  'completion_error_ms',
  'worker_received_ms',
  'worker_sent_ms',
  // the worker's own timing of each stage (a chain: segments and unfused ramp heads), `name:ms` joined by ';'
  'stages',
  // the action's start window as planned: when it was planned (its earliest start) and its latest start
  'planned_ms',
  'latest_ms',
  // INFERs: each stage's predicted duration (`name:ms` joined by ';'), and rows run per stage, actual/predicted (`name:rows/rows`)
  'expected_stages',
  'stage_rows',
] as const;

export interface RequestLogRow {
  requestId: number;
  model: string;
  status: string;
  code: number;
  arrivalNs: number;
  deadlineNs: number;
  completeNs: number;
  workerId?: string;
  batchSize?: number;
  /** The INFER that answered it (join with actions.csv). */
  actionId?: number;
  /** Admitted requests: the completion admission predicted at its arrival. */
  predictedCompleteNs?: number;
  /** Admitted requests: queued requests ahead of it at its arrival. */
  rowsAhead?: number;
}

const stageList = (stages: readonly StageTiming[]): string => stages.map((s) => `${s.name}:${(s.durationNs / 1e6).toFixed(3)}`).join(';');

/**
 * `name:actual/expected` rows per stage of a chain run. A stage the batch never reached (every
 * row had exited before it) is not in the worker's report; it ran 0 rows against its prediction,
 * and is listed so, or every per-stage comparison would count only the batches that reached it.
 */
function stageRows(reported: readonly StageTiming[], expected: readonly StageTiming[]): string[] {
  const ran = new Map(reported.filter((s) => s.numRows !== undefined).map((s) => [s.name, s.numRows!]));
  if (ran.size === 0) return [];
  const expectedRows = new Map(expected.map((s) => [s.name, s.numRows]));
  const names = [...ran.keys()];
  // only for the run's own stages (a run the worker took whole reports `model`, not the chain's)
  if (expected.some((e) => ran.has(e.name))) for (const s of expected) if (!ran.has(s.name) && s.numRows !== undefined) names.push(s.name);
  return names.map((name) => `${name}:${ran.get(name) ?? 0}/${(expectedRows.get(name) ?? Number.NaN).toFixed(1)}`);
}

export class TelemetryLog {
  private readonly requests: WriteStream;
  private readonly actions: WriteStream;
  private readonly thresholdChanges: WriteStream;
  /** Why the logs stopped (undefined while they work). */
  private failure: string | undefined;
  /** Rows not written since the logs stopped. */
  droppedRows = 0;

  constructor(
    private readonly dir: string,
    private readonly originNs: number,
    private readonly onFailure: (message: string) => void = () => {},
  ) {
    mkdirSync(dir, { recursive: true });
    this.requests = this.open('requests.csv');
    this.actions = this.open('actions.csv');
    this.thresholdChanges = this.open('thresholds.csv');
    this.write(this.thresholdChanges, 't_ms,model,reason,before,after,num_samples,disagreement_bound,expected_saving_ms\n');
    this.write(this.requests, `${REQUEST_LOG_COLUMNS.join(',')}\n`);
    this.write(this.actions, `${ACTION_LOG_COLUMNS.join(',')}\n`);
  }

  private open(file: string): WriteStream {
    const stream = createWriteStream(join(this.dir, file));
    stream.on('error', (err: Error) => {
      if (this.failure !== undefined) return;
      this.failure = `${file}: ${err.message}`;
      this.onFailure(`telemetry logs in ${this.dir} stopped (${this.failure}); serving goes on without them`);
    });
    return stream;
  }

  private write(stream: WriteStream, line: string): void {
    if (this.failure !== undefined || stream.destroyed) {
      this.droppedRows++;
      return;
    }
    stream.write(line);
  }

  /** Why the logs stopped, or undefined while they work. */
  get stoppedBecause(): string | undefined {
    return this.failure;
  }

  private ms(ns: number): string {
    return ns > 0 ? ((ns - this.originNs) / 1e6).toFixed(4) : '';
  }

  request(row: RequestLogRow): void {
    const latencyMs = (row.completeNs - row.arrivalNs) / 1e6;
    const sloMs = (row.deadlineNs - row.arrivalNs) / 1e6;
    this.write(
      this.requests,
      [
        this.ms(row.completeNs),
        row.requestId,
        row.model,
        row.status,
        row.code,
        this.ms(row.arrivalNs),
        this.ms(row.deadlineNs),
        this.ms(row.completeNs),
        latencyMs.toFixed(4),
        sloMs.toFixed(3),
        row.status === 'OK' ? 1 : 0,
        row.workerId ?? '',
        row.batchSize ?? '',
        row.actionId ?? '',
        row.predictedCompleteNs !== undefined ? this.ms(row.predictedCompleteNs) : '',
        row.rowsAhead ?? '',
      ].join(',') + '\n',
    );
  }

  action(r: ActionRecord, nowNs: number): void {
    const started = r.actualStartNs > 0;
    const stages = r.stages;
    const rows = stageRows(stages, r.expectedStages);
    this.write(
      this.actions,
      [
        this.ms(nowNs),
        r.actionId,
        r.actionType,
        r.code,
        r.workerId,
        r.model,
        r.batchSize,
        r.numRequests,
        this.ms(r.expectedStartNs),
        this.ms(r.actualStartNs),
        started ? ((r.actualStartNs - r.expectedStartNs) / 1e6).toFixed(4) : '',
        (r.expectedDurationNs / 1e6).toFixed(4),
        started ? (r.actualDurationNs / 1e6).toFixed(4) : '',
        this.ms(r.expectedCompleteNs),
        this.ms(r.actualCompleteNs),
        started ? ((r.actualCompleteNs - r.expectedCompleteNs) / 1e6).toFixed(4) : '',
        this.ms(r.receivedNs),
        this.ms(r.sentNs),
        stageList(stages),
        this.ms(r.plannedNs),
        this.ms(r.latestNs),
        stageList(r.expectedStages),
        rows.join(';'),
      ].join(',') + '\n',
    );
  }

  /** Every change of a model's ramp thresholds, with its reason. */
  thresholds(change: Omit<ThresholdChange, 'reason'> & { reason: string }, nowNs: number): void {
    this.write(
      this.thresholdChanges,
      [
        this.ms(nowNs),
        change.model,
        change.reason,
        change.before.join(' '),
        change.after.join(' '),
        change.numSamples,
        change.disagreementUpperBound.toFixed(5),
        change.expectedSavingMs.toFixed(4),
      ].join(',') + '\n',
    );
  }

  async close(): Promise<void> {
    // NOTE: a stream that failed is destroyed; its end callback may never come.
    await Promise.all(
      [this.requests, this.actions, this.thresholdChanges].map((s) => (s.destroyed ? Promise.resolve() : new Promise<void>((resolve) => s.end(resolve)))),
    );
  }
}
