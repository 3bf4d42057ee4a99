/**
 * Tunables of the scheduling core. Every time is in nanoseconds; defaults are sized for CPU
 * workers on a shared 2-core machine, where Node timers have ~1 ms granularity and wake-up
 * tails of a few ms.
 */
import { DEFAULT_ADMISSION_MARGIN, type AdmissionMarginConfig } from './admission-margin.js';
import { DEFAULT_ESTIMATOR_CONFIG, type EstimatorConfig } from './latency-estimator.js';
import { DEFAULT_TIMELINE_CONFIG, type TimelineConfig } from './worker-timeline.js';

export interface SchedulerConfig {
  /**
   * Plan new work for a worker only while it is predicted to be free within this horizon.
   * Default 5 ms (Clockwork's experiments): binding requests to workers late keeps batches large
   * and lets urgent arrivals jump ahead.
   */
  scheduleAheadNs: number;
  /**
   * Aim to finish this much before the client's deadline when sizing batches. Default 5 ms:
   * covers the p99 wake-up lateness of an unprivileged Node process (0.2–4 ms measured here).
   */
  bufferNs: number;
  /**
   * Width of an action's start window past its predicted start (`latest = start + delta`).
   * Default 5 ms, not above `bufferNs`, so an action that starts as late as allowed still lands
   * inside the buffer (Clockwork's 10 ms > 5 ms buffer let late starts miss SLOs).
   */
  latestDeltaNs: number;
  /**
   * An INFER's start window widens past `latestDeltaNs` while every member could still finish in
   * time (a worker running behind starts it late instead of refusing a batch that would make
   * it), up to this much past its predicted start. Default 20 ms: covers a tail-length overrun
   * of the action ahead, and keeps a lost result's detection (after the latest end) prompt.
   */
  maxLatestDeltaNs: number;
  /** Largest batch ever formed (also capped by each model's profiled sizes). Default 16. */
  maxBatchSize: number;
  /** LOAD duration assumed before one has been measured. Default 1 s (session + profiling). */
  defaultLoadNs: number;
  /** UNLOAD duration assumed. Default 1 ms (releasing a session). */
  defaultUnloadNs: number;
  /**
   * RAMPS (building a chain for a ramp set) duration assumed before one is measured: before the
   * model serves on that worker (a full warm-up), default 300 ms, or more where the worker's own
   * run times price the warm-up higher (BatchEstimates.rampsPriorNs); during service (a smoke
   * run), default 50 ms (fmnist-resnet measured 15-45 ms on the development VM).
   */
  defaultRampsNs: number;
  defaultSmokeRampsNs: number;
  /**
   * Load another copy of a model when its queued work exceeds this much executor time and a
   * worker has free memory. Default 10 ms.
   */
  replicateBacklogNs: number;
  /**
   * An action whose result has not arrived this long after its latest end (`latestNs +
   * expectedDurationNs`) is given up: its requests are re-planned, a LOAD is forgotten. Default
   * 2 s: zeromq delivery is at-most-once, and a result lost on the wire must not pin a worker's
   * timeline or a request forever.
   */
  overdueGraceNs: number;
  /** Bound on requests queued in the controller; beyond it arrivals get QUEUE_FULL. Default 100,000. */
  maxQueuedRequests: number;
  /**
   * `deadline` (default): the Clockwork-style planner above. `fifo`: the baseline users would pick
   * instead (TF-Serving / Triton dynamic batching): requests in arrival order, a batch leaves when
   * it is full (`maxBatchSize`) or its oldest request has waited `batchTimeoutNs`, no deadline
   * admission and no dropping, a bounded queue (`maxEnqueuedBatches`); ramps layer on it through
   * the same INFER mechanism.
   */
  policy: 'deadline' | 'fifo';
  /** fifo: how long the oldest request may wait for its batch to fill. Default 5 ms. */
  batchTimeoutNs: number;
  /**
   * fifo: at most this many full batches wait per model; arrivals beyond get QUEUE_FULL at once
   * (TF-Serving's `max_enqueued_batches`, default 10). 0: unbounded, so under overload the queue
   * and every request's latency grow without limit.
   */
  maxEnqueuedBatches: number;
  estimator: EstimatorConfig;
  timeline: TimelineConfig;
  /** Admission's margin learned from its own prediction errors (admission-margin.ts). */
  admissionMargin: AdmissionMarginConfig;
  /**
   * Release mode: run a batch on the fused model (whole model plus heads, no early answers) when
   * more requests wait than it takes (batch-estimates.ts `runsFused`). Default true; false runs
   * every release batch as the chain (early answers, 8-20 % more time), as before.
   */
  fusedRelease: boolean;
}

export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = {
  scheduleAheadNs: 5_000_000,
  bufferNs: 5_000_000,
  latestDeltaNs: 5_000_000,
  maxLatestDeltaNs: 20_000_000,
  maxBatchSize: 16,
  defaultLoadNs: 1_000_000_000,
  defaultUnloadNs: 1_000_000,
  defaultRampsNs: 300_000_000,
  defaultSmokeRampsNs: 50_000_000,
  replicateBacklogNs: 10_000_000,
  overdueGraceNs: 2_000_000_000,
  maxQueuedRequests: 100_000,
  policy: 'deadline',
  batchTimeoutNs: 5_000_000,
  maxEnqueuedBatches: 10,
  estimator: DEFAULT_ESTIMATOR_CONFIG,
  timeline: DEFAULT_TIMELINE_CONFIG,
  admissionMargin: DEFAULT_ADMISSION_MARGIN,
  fusedRelease: true,
};

export function schedulerConfig(overrides: Partial<SchedulerConfig> = {}): SchedulerConfig {
  return { ...DEFAULT_SCHEDULER_CONFIG, ...overrides };
}
