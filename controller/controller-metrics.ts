/**
 * Prometheus metrics for the controller, following Triton's semantics under our own prefix and
 * Prometheus conventions (seconds, `_total`, histograms), plus what only Escapement has: exits
 * per ramp, current thresholds, rolling agreement, SLO attainment, prediction error and action
 * lateness, worker liveness and memory.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { errorName } from '../shared/error-codes.js';
import type { RequestStatus } from '../shared/protocol.js';
import type { ControllerStatus } from '../shared/status-schema.js';
import type { ActionRecord } from './result-folding.js';

const PREFIX = 'escapement_';
const LATENCY_BUCKETS_S = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

export interface MetricsSource {
  /** A status snapshot (see ControllerServer.status). */
  status(): Pick<ControllerStatus, 'numPending' | 'exits' | 'workers'>;
}

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly success = new Counter({
    name: `${PREFIX}inference_request_success_total`,
    help: 'Requests answered OK within their deadline (early exits included).',
    labelNames: ['model'],
    registers: [this.registry],
  });
  private readonly failure = new Counter({
    name: `${PREFIX}inference_request_failure_total`,
    help: 'Requests not answered OK, by reason (REJECTED, DEADLINE, ERROR) and error code name.',
    labelNames: ['model', 'reason', 'code'],
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: `${PREFIX}inference_request_duration_seconds`,
    help: 'Arrival to answer at the controller, by final status.',
    labelNames: ['model', 'status'],
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  private readonly compute = new Histogram({
    name: `${PREFIX}inference_compute_duration_seconds`,
    help: 'Executor time of each INFER on its worker.',
    labelNames: ['model'],
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  private readonly queue = new Histogram({
    name: `${PREFIX}inference_queue_duration_seconds`,
    help: 'Arrival to the start of the INFER that served the request (planned start), per request.',
    labelNames: ['model'],
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  private readonly batch = new Histogram({
    name: `${PREFIX}inference_batch_size`,
    help: 'Requests per executed INFER.',
    labelNames: ['model'],
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });
  private readonly exits = new Counter({
    name: `${PREFIX}exit_total`,
    help: 'Requests answered at a ramp.',
    labelNames: ['model', 'ramp'],
    registers: [this.registry],
  });
  private readonly predictionError = new Histogram({
    name: `${PREFIX}action_prediction_error_seconds`,
    help: '|actual - predicted| duration of executed actions.',
    labelNames: ['type'],
    buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1],
    registers: [this.registry],
  });
  private readonly lateness = new Histogram({
    name: `${PREFIX}action_start_lateness_seconds`,
    help: 'Actual minus planned start of executed actions (negative: early).',
    labelNames: ['type'],
    buckets: [-0.01, -0.002, -0.0005, 0, 0.0005, 0.002, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });
  private readonly answered = new Map<string, { ok: number; all: number }>();

  constructor(source: MetricsSource) {
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    const answered = this.answered;
    new Gauge({
      name: `${PREFIX}inference_pending_requests`,
      help: 'Requests admitted and not yet answered.',
      registers: [this.registry],
      collect() {
        this.set(source.status().numPending);
      },
    });
    new Gauge({
      name: `${PREFIX}slo_attainment_ratio`,
      help: 'Share of answered requests that met their deadline, since start.',
      labelNames: ['model'],
      registers: [this.registry],
      collect() {
        for (const [model, c] of answered) this.set({ model }, c.all === 0 ? 1 : c.ok / c.all);
      },
    });
    new Gauge({
      name: `${PREFIX}ramp_threshold`,
      help: 'Current confidence threshold of each active ramp.',
      labelNames: ['model', 'ramp'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const e of source.status().exits) e.siteIds.forEach((site, i) => this.set({ model: e.model, ramp: String(site) }, e.thresholds[i]!));
      },
    });
    new Gauge({
      name: `${PREFIX}ramp_agreement_ratio`,
      help: 'Rolling agreement of the answers given with the full model (monitor window).',
      labelNames: ['model'],
      registers: [this.registry],
      collect() {
        for (const e of source.status().exits) this.set({ model: e.model }, e.windowAgreement);
      },
    });
    new Gauge({
      name: `${PREFIX}worker_up`,
      help: 'Registered, live workers.',
      labelNames: ['worker'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const w of source.status().workers) this.set({ worker: w.id }, 1);
      },
    });
    new Gauge({
      name: `${PREFIX}worker_memory_used_bytes`,
      help: 'Memory accounted to loaded models per worker.',
      labelNames: ['worker'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const w of source.status().workers) this.set({ worker: w.id }, w.usedBytes);
      },
    });
  }

  /** Queueing of one request: from its arrival to the start of the INFER that served it. */
  observeQueue(model: string, queueNs: number): void {
    this.queue.observe({ model }, Math.max(0, queueNs) / 1e9);
  }

  observeAnswer(model: string, status: RequestStatus, code: number, latencyNs: number, exitRamp: number | undefined): void {
    const counts = this.answered.get(model) ?? { ok: 0, all: 0 };
    counts.all++;
    if (status === 'OK') {
      counts.ok++;
      this.success.inc({ model });
    } else {
      this.failure.inc({ model, reason: status === 'DEADLINE_MISSED' ? 'DEADLINE' : status, code: errorName(code) });
    }
    this.answered.set(model, counts);
    this.latency.observe({ model, status }, latencyNs / 1e9);
    if (exitRamp !== undefined) this.exits.inc({ model, ramp: String(exitRamp) });
  }

  observeAction(record: ActionRecord): void {
    if (record.code !== 0 || record.actualStartNs === 0) return;
    if (record.actionType === 'infer') {
      this.batch.observe({ model: record.model }, record.numRequests);
      this.compute.observe({ model: record.model }, record.actualDurationNs / 1e9);
    }
    this.predictionError.observe({ type: record.actionType }, Math.abs(record.actualDurationNs - record.expectedDurationNs) / 1e9);
    this.lateness.observe({ type: record.actionType }, (record.actualStartNs - record.expectedStartNs) / 1e9);
  }
}
