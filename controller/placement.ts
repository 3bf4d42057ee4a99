/**
 * Where models live, as part of the pure scheduling core: which worker loads a model that has
 * demand and no copy (free memory first, then the worker that frees up first, evicting
 * least-recently-used models without demand if it must), when a backlog earns another copy,
 * pinned models on every worker with room, and taking a model out of service. Plans LOAD and
 * UNLOAD actions through `PlacementActions`, which the scheduler implements (it owns action ids,
 * windows and answers).
 */
import { ErrorCode } from '../shared/error-codes.js';
import { freeBytes, isInUse, type ModelState, type WorkerState } from './cluster-state.js';
import type { BatchEstimates } from './batch-estimates.js';
import type { LatencyEstimator } from './latency-estimator.js';
import type { SchedulerConfig } from './scheduler-config.js';

/** No window is this far out: an UNLOAD may start whenever its worker gets to it. */
export const FAR_FUTURE_NS = 3_600_000_000_000;

export type PlacementActionBody = { type: 'load'; modelName: string; batchSizes: number[] } | { type: 'unload'; modelName: string };

/** What placement asks of the scheduler while it plans. */
export interface PlacementActions {
  /** Plans a LOAD or UNLOAD on the worker, to start when its timeline frees up. */
  plan(worker: WorkerState, body: PlacementActionBody, durationNs: number, latestDeltaNs: number): void;
  /** The worker no longer holds the model (its UNLOAD is planned). */
  forget(worker: WorkerState, model: string): void;
  /** No worker can ever load the model: answer its queued requests with `code`. */
  failQueued(model: ModelState, code: number, message: string): void;
}

export class Placement {
  constructor(
    private readonly workers: ReadonlyMap<string, WorkerState>,
    /** Models with queued requests (the scheduler keeps it): never evicted. */
    private readonly modelsWithDemand: ReadonlySet<string>,
    private readonly estimates: BatchEstimates,
    private readonly estimator: LatencyEstimator,
    private readonly config: SchedulerConfig,
  ) {}

  /** A model's memory: as a worker measured it once loaded, else as its package declares. */
  weightsBytes(model: ModelState): number {
    return model.measuredWeightsBytes ?? model.spec.weightsBytes;
  }

  /** A model with demand: a first copy where it fits (evicting if it must), another for a backlog. */
  placeDemanded(model: ModelState, nowNs: number, actions: PlacementActions): void {
    const name = model.spec.name;
    if (model.holders.size === 0) {
      const target = this.chooseLoadTarget(model, nowNs, true);
      if (target) this.planLoad(target, model, nowNs, actions);
      else if (this.everyWorkerFailed(name)) actions.failQueued(model, ErrorCode.MODEL_UNAVAILABLE, `no worker could load '${name}'`);
      return;
    }
    // NOTE: a queue one batch can drain never needs another copy; checked first, this keeps plans cheap.
    if (model.queue.length <= this.estimates.largestBatch(model)) return;
    for (const worker of model.holders.values()) if (worker.instances.get(name)!.state === 'loading') return;
    if (this.estimates.backlogNs(model) > this.config.replicateBacklogNs) {
      const target = this.chooseLoadTarget(model, nowNs, false);
      if (target) this.planLoad(target, model, nowNs, actions);
    }
  }

  /** A pinned model: loaded on every worker with free memory for it, demand or not. */
  placePinned(model: ModelState, nowNs: number, actions: PlacementActions): void {
    if (model.holders.size === this.workers.size) return;
    const needBytes = this.weightsBytes(model);
    for (const worker of this.workers.values()) {
      if (worker.instances.has(model.spec.name) || worker.failedModels.has(model.spec.name)) continue;
      if (freeBytes(worker) >= needBytes) this.planLoad(worker, model, nowNs, actions);
    }
  }

  /**
   * A model taken out of service: unloaded from every worker where it is loaded and idle, once
   * what was admitted is served. True when no worker holds it any more.
   */
  unloadEverywhere(model: ModelState, actions: PlacementActions): boolean {
    if (model.queue.length > 0) return false; // serve what was admitted first
    for (const worker of [...model.holders.values()]) {
      const instance = worker.instances.get(model.spec.name)!;
      if (instance.state !== 'loaded' || isInUse(worker, model.spec.name)) continue;
      actions.plan(worker, { type: 'unload', modelName: model.spec.name }, this.config.defaultUnloadNs, FAR_FUTURE_NS);
      actions.forget(worker, model.spec.name);
    }
    return model.holders.size === 0;
  }

  /** A worker without the model that can hold it: free memory first, earliest free second. */
  private chooseLoadTarget(model: ModelState, nowNs: number, allowEviction: boolean): WorkerState | undefined {
    const needBytes = this.weightsBytes(model);
    let best: WorkerState | undefined;
    let bestKey = Number.POSITIVE_INFINITY;
    for (const worker of this.workers.values()) {
      if (worker.instances.has(model.spec.name) || worker.failedModels.has(model.spec.name)) continue;
      if (worker.memoryBudgetBytes < needBytes) continue;
      const fits = freeBytes(worker) >= needBytes;
      if (!fits && (!allowEviction || this.evictableBytes(worker) + freeBytes(worker) < needBytes)) continue;
      // NOTE: workers that fit without eviction always rank before those that need it.
      const key = (fits ? 0 : FAR_FUTURE_NS) + worker.timeline.freeAtNs(nowNs);
      if (key < bestKey) {
        bestKey = key;
        best = worker;
      }
    }
    return best;
  }

  /** Loaded models without demand or work in flight, least recently used first. */
  private evictionCandidates(worker: WorkerState): string[] {
    return [...worker.instances.values()]
      .filter((i) => i.state === 'loaded' && !this.modelsWithDemand.has(i.model) && !isInUse(worker, i.model))
      .sort((a, b) => a.lastUsedNs - b.lastUsedNs)
      .map((i) => i.model);
  }

  private evictableBytes(worker: WorkerState): number {
    return this.evictionCandidates(worker).reduce((sum, m) => sum + worker.instances.get(m)!.weightsBytes, 0);
  }

  private planLoad(worker: WorkerState, model: ModelState, nowNs: number, actions: PlacementActions): void {
    const needBytes = this.weightsBytes(model);
    // Make room: least recently used models without demand go first.
    for (const victim of this.evictionCandidates(worker)) {
      if (freeBytes(worker) >= needBytes) break;
      actions.plan(worker, { type: 'unload', modelName: victim }, this.config.defaultUnloadNs, FAR_FUTURE_NS);
      actions.forget(worker, victim);
    }
    const loadNs = this.estimator.estimateNs(model.spec.name, worker.id, 0) ?? model.spec.loadEstimateNs ?? this.config.defaultLoadNs;
    actions.plan(worker, { type: 'load', modelName: model.spec.name, batchSizes: model.spec.batchSizes }, loadNs, Math.max(this.config.latestDeltaNs, loadNs));
    worker.usedBytes += needBytes;
    worker.instances.set(model.spec.name, {
      model: model.spec.name,
      state: 'loading',
      weightsBytes: needBytes,
      lastUsedNs: nowNs,
      readyRampSets: new Set(),
      served: false,
      pendingRampSets: new Set(),
    });
    model.holders.set(worker.id, worker);
  }

  private everyWorkerFailed(model: string): boolean {
    return this.workers.size > 0 && [...this.workers.values()].every((w) => w.failedModels.has(model));
  }
}
