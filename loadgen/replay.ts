/**
 * Open-loop trace replay: request i is sent at its scheduled time whatever happened to earlier
 * ones, and its latency is measured from that scheduled time (so a late send counts against the
 * system, not in its favour: no coordinated omission). How late each send was is recorded too.
 */
import { monotonicNowNs } from '../shared/clock.js';
import { asFloat32, type Tensor } from '../shared/tensor.js';
import type { Arrival } from '../traces/trace.js';
import type { EscapementClient, InferResponse } from '../client/escapement-client.js';
import { waitUntilNs } from './send-pacing.js';

export interface ReplayOptions {
  arrivals: readonly Arrival[];
  /** Model for arrivals that name none. */
  model: string;
  /** SLO for arrivals that carry none. */
  sloMs: number;
  inputsFor: (index: number) => Tensor[];
  /** Ground truth of request i, when known. */
  labelFor?: (index: number) => number | undefined;
  /** The full model's prediction for request i, when known (agreement of early answers). */
  referenceFor?: (index: number) => number | undefined;
  onProgress?: (progress: ReplayProgress) => void;
  /** Called just before request i is sent (compare's oracle switches thresholds here). */
  beforeSend?: (index: number) => void;
}

export interface ReplayProgress {
  numScheduled: number;
  numSent: number;
  numAnswered: number;
  numEarly: number;
  numRejected: number;
  numMissed: number;
  numErrors: number;
}

export interface ReplayRecord {
  index: number;
  requestId: string;
  model: string;
  sloMs: number;
  /** Scheduled arrival (local monotonic ns). */
  arrivalNs: number;
  deadlineNs: number;
  completeNs: number;
  /** From the scheduled arrival to the answer. */
  latencyMs: number;
  /** How late the send was against the schedule. */
  scheduleLagMs: number;
  /** The server's verdict (it judges against the deadline when the result reaches it). */
  status: InferResponse['status'];
  /** Answered OK and the answer reached this client by the deadline: what SLO attainment counts. */
  metSlo: boolean;
  code: number;
  early: boolean;
  exitRamp?: number;
  batchSize?: number;
  worker?: string;
  prediction?: number;
  correct?: boolean;
  agrees?: boolean;
}

export interface ReplayResult {
  records: ReplayRecord[];
  startNs: number;
  durationSec: number;
}

function predictionOf(response: InferResponse): number | undefined {
  if (response.prediction !== undefined) return response.prediction;
  const out = response.outputs[0];
  if (!out || out.dtype !== 'float32') return undefined;
  const values = asFloat32(out.data);
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return values.length > 0 ? best : undefined;
}

export async function replayTrace(client: EscapementClient, options: ReplayOptions): Promise<ReplayResult> {
  const progress: ReplayProgress = {
    numScheduled: options.arrivals.length,
    numSent: 0,
    numAnswered: 0,
    numEarly: 0,
    numRejected: 0,
    numMissed: 0,
    numErrors: 0,
  };
  const records: ReplayRecord[] = new Array(options.arrivals.length);
  const pending: Promise<void>[] = [];
  const startNs = monotonicNowNs() + 20_000_000;
  const timer = options.onProgress ? setInterval(() => options.onProgress!(progress), 250) : undefined;
  for (let i = 0; i < options.arrivals.length; i++) {
    const arrival = options.arrivals[i]!;
    const dueNs = startNs + arrival.timeMs * 1e6;
    // Never blocks on earlier answers: open loop.
    await waitUntilNs(dueNs);
    const model = arrival.model ?? options.model;
    const sloMs = arrival.sloMs ?? options.sloMs;
    const deadlineNs = dueNs + sloMs * 1e6;
    options.beforeSend?.(i);
    const sentNs = monotonicNowNs();
    progress.numSent++;
    // The deadline counts from the scheduled time, so the controller plans against the same
    // deadline this report judges by; a late send leaves it less time, not more.
    pending.push(
      client.submit(model, options.inputsFor(i), { deadlineLocalNs: Math.round(deadlineNs) }).then((response) => {
        const completeNs = monotonicNowNs();
        const prediction = response.status === 'OK' || response.status === 'DEADLINE_MISSED' ? predictionOf(response) : undefined;
        const label = options.labelFor?.(i);
        const reference = options.referenceFor?.(i);
        const record: ReplayRecord = {
          index: i,
          requestId: response.requestId,
          model,
          sloMs,
          arrivalNs: dueNs,
          deadlineNs,
          completeNs,
          latencyMs: (completeNs - dueNs) / 1e6,
          scheduleLagMs: (sentNs - dueNs) / 1e6,
          status: response.status,
          metSlo: response.status === 'OK' && completeNs <= deadlineNs,
          code: response.code,
          early: response.early === true,
        };
        if (response.exitRamp !== undefined) record.exitRamp = response.exitRamp;
        if (response.batchSize !== undefined) record.batchSize = response.batchSize;
        if (response.workerId !== undefined) record.worker = response.workerId;
        if (prediction !== undefined) {
          record.prediction = prediction;
          if (label !== undefined) record.correct = prediction === label;
          if (reference !== undefined) record.agrees = prediction === reference;
        }
        records[i] = record;
        progress.numAnswered++;
        if (record.early) progress.numEarly++;
        if (record.status === 'REJECTED') progress.numRejected++;
        if (record.status === 'DEADLINE_MISSED' || (record.status === 'OK' && !record.metSlo)) progress.numMissed++;
        if (record.status === 'ERROR') progress.numErrors++;
      }),
    );
  }
  await Promise.all(pending);
  if (timer) clearInterval(timer);
  options.onProgress?.(progress);
  return { records, startNs, durationSec: (monotonicNowNs() - startNs) / 1e9 };
}
