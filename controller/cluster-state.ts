/**
 * What the scheduling core knows about models, workers and the actions in flight. Plain data,
 * mutated only by the `Scheduler`.
 */
import type { Action, ExitMode, LoadAction, StageTiming } from '../shared/protocol.js';
import type { ExitTimeline } from './exit-timeline.js';
import type { TensorSpec } from '../shared/tensor.js';
import { RequestQueue, type QueuedRequest } from './request-queue.js';
import { ArrivalRate } from './arrival-rate.js';
import { WorkerTimeline, type TimelineConfig } from './worker-timeline.js';

export interface ModelSpec {
  name: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Profiled batch sizes, ascending. */
  batchSizes: number[];
  /** Memory accounted before a worker has measured it (bytes). */
  weightsBytes: number;
  /** Prior for the batch-1 duration before any worker profiled the model (ns); 0 if unknown. */
  nominalBatch1Ns: number;
  /**
   * Prior for a LOAD's duration before any worker loaded the model (ns), from the package profile:
   * a LOAD profiles every batch size, so a real-size model's takes tens of seconds, and a window
   * sized for a small model would give it up (and send it again) before it could finish.
   */
  loadEstimateNs?: number;
  /** Text models: ascending sequence buckets (estimates are kept per bucket); absent: fixed shape. */
  sequenceBuckets?: number[];
  /** Early exits for this model (packages with ramps); absent: the model runs whole. */
  earlyExit?: ExitConfig;
  /** When its batches finish with exits: chain cost, learned segment lines and exit evidence. */
  exitTimeline?: ExitTimeline;
  /** The ramp set (site ids joined by ',') a worker's LOAD of the package prepares. */
  loadedRampSet?: string;
}

/** How a model's INFERs use their ramps; the tuner and adjuster change it at run time. */
export interface ExitConfig {
  mode: ExitMode;
  /** Active ramps in depth order with their thresholds (max softmax ≥ threshold exits). */
  ramps: { siteId: number; threshold: number }[];
  /**
   * Compact mode: the fraction of requests that still run to the end after exiting, so their
   * agreement can be monitored. Default 0.1.
   */
  monitorFraction: number;
  /** Observed fraction of requests answered at each ramp (same order); unknown: none. */
  exitRates?: number[];
  /** How many samples `exitRates` rests on (the monitor's window); seeds the timeline's evidence. */
  exitRatesBasis?: number;
}

export interface ModelState {
  spec: ModelSpec;
  queue: RequestQueue;
  /** Workers holding an instance (loading or loaded), by worker id. An index over `instances`. */
  holders: Map<string, WorkerState>;
  /** Measured memory footprint once a worker has loaded it. */
  measuredWeightsBytes?: number;
  /** Recent admitted arrivals (admission: how fast a batch fills up behind a request). */
  arrivals: ArrivalRate;
}

export type InstanceState = 'loading' | 'loaded';

export interface ModelInstance {
  model: string;
  state: InstanceState;
  weightsBytes: number;
  lastUsedNs: number;
  /** Ramp sets (site ids joined by ',') whose chains this worker has built. */
  readyRampSets: Set<string>;
  /** Ramp sets with a RAMPS action in flight, or that failed (never retried here). */
  pendingRampSets: Set<string>;
  /** An INFER has been planned on it: a RAMPS from then on is a ramp change during service. */
  served: boolean;
}

export interface InflightAction {
  action: Action;
  workerId: string;
  requests: QueuedRequest[];
  /** Rows already answered at a ramp (their final result is feedback only). */
  answeredRows?: Set<number>;
  /** INFERs: how its expected duration splits over the stages the worker reports (predicted vs actual per stage). */
  expectedStages?: StageTiming[];
}

export interface WorkerState {
  id: string;
  memoryBudgetBytes: number;
  usedBytes: number;
  instances: Map<string, ModelInstance>;
  timeline: WorkerTimeline;
  inflight: Map<number, InflightAction>;
  /** Models this worker failed to load (unknown model, runtime failure): never retried on it. */
  failedModels: Set<string>;
  /**
   * LOADs given up on as overdue, by action id: the worker may still finish them, and its late
   * result then says the model sits in its memory (the controller adopts it, see scheduler.ts).
   */
  abandonedLoads: Map<number, LoadAction>;
}

export function newModelState(spec: ModelSpec): ModelState {
  return { spec, queue: new RequestQueue(), holders: new Map(), arrivals: new ArrivalRate() };
}

export function newWorkerState(id: string, memoryBudgetBytes: number, timelineConfig: TimelineConfig): WorkerState {
  return {
    id,
    memoryBudgetBytes,
    usedBytes: 0,
    instances: new Map(),
    timeline: new WorkerTimeline(timelineConfig),
    inflight: new Map(),
    abandonedLoads: new Map(),
    failedModels: new Set(),
  };
}

export function freeBytes(worker: WorkerState): number {
  return worker.memoryBudgetBytes - worker.usedBytes;
}

/** True when some in-flight action on the worker uses the model (it must not be unloaded). */
export function isInUse(worker: WorkerState, model: string): boolean {
  for (const inflight of worker.inflight.values()) if (inflight.action.modelName === model) return true;
  return false;
}

/**
 * The key of a ramp set in an instance's `readyRampSets` / `pendingRampSets`: its site ids, and
 * `+fused` when the worker also built the whole model with those heads fused in (release mode).
 */
export const rampSetKey = (siteIds: readonly number[], fused = false): string => `${siteIds.join(',')}${fused ? '+fused' : ''}`;
