/**
 * The pure scheduling core: plans every LOAD, INFER and UNLOAD from state and time, and folds
 * results back in. No sockets, timers or clocks: the caller passes `nowNs` and performs the
 * returned actions and answers (see `controller-server.ts`), so every decision is testable with
 * a fake worker and a virtual clock.
 *
 * Algorithm (Clockwork's INFER5, with early answers; the dispatch rules live in
 * deadline-dispatch.ts, and the fifo baseline's in fifo-dispatch.ts):
 * - Each model keeps its requests ordered by deadline. A worker gets new work only while its
 *   predicted timeline frees up within `scheduleAheadNs`. It then serves the loaded model whose
 *   head request has the earliest latest-start time, in the largest profiled batch whose every
 *   member still finishes `bufferNs` before its deadline (padding up to a profiled size).
 * - Admission: a request that cannot finish by its deadline on any worker, given the current
 *   plan, is REJECTED at arrival with the reason. A queued request that becomes infeasible is
 *   dropped and answered at once (DEADLINE_MISSED), not at its deadline.
 * - Placement (placement.ts): a model with demand and no copy is loaded where memory allows,
 *   unloading least-recently-used models without demand if needed; a model whose backlog
 *   exceeds `replicateBacklogNs` gets another copy where memory is free.
 *
 * Failure modes: predictions are only as good as the estimates; an action that overruns pushes
 * the worker's timeline later (re-anchored on each result) and later requests may be dropped.
 * A worker that stops answering is removed by the adapter (`removeWorker`), and its in-flight
 * requests are re-queued when their deadline still allows, else answered with WORKER_LOST.
 */
import { ErrorCode } from '../shared/error-codes.js';
import type { ActionResultMsg, ExitMsg, LoadAction, RequestStatus, UnloadAction } from '../shared/protocol.js';
import { newModelState, newWorkerState, type ExitConfig, type ModelSpec, type ModelState, type WorkerState } from './cluster-state.js';
import { Admission } from './admission.js';
import { BatchEstimates } from './batch-estimates.js';
import { Placement, type PlacementActions } from './placement.js';
import { DeadlineDispatch } from './deadline-dispatch.js';
import { FifoDispatch } from './fifo-dispatch.js';
import type { DispatchHost, DispatchPolicy } from './dispatch-policy.js';
import type { ExitTimeline } from './exit-timeline.js';
import { LatencyEstimator } from './latency-estimator.js';
import { ResultFolding, type ResultFold } from './result-folding.js';
import { ActionBook } from './action-book.js';
import { ModelService } from './model-service.js';
import { InferPlanning } from './infer-planning.js';
import { snapshotOf, type SchedulerSnapshot } from './scheduler-snapshot.js';
import type { QueuedRequest } from './request-queue.js';
import { DEFAULT_SCHEDULER_CONFIG, type SchedulerConfig } from './scheduler-config.js';
import type { PlanResult, RequestOutcome } from './core-outputs.js';

/** What the exit rates depend on: the mode, the active ramps and their thresholds. */
const exitConfigKey = (config: ExitConfig): string => `${config.mode}|${config.ramps.map((r) => `${r.siteId}:${r.threshold}`).join(',')}`;

export class Scheduler {
  readonly config: SchedulerConfig;
  private readonly models = new Map<string, ModelState>();
  private readonly workers = new Map<string, WorkerState>();
  private readonly estimator: LatencyEstimator;
  /** Deadline admission and its learned margin (admission.ts). */
  private readonly admission: Admission;
  /** Batch sizes, durations, backlogs and drain predictions (batch-estimates.ts). */
  private readonly estimates: BatchEstimates;
  /** Where models are loaded, copied and evicted (placement.ts). */
  private readonly placement: Placement;
  /** How requests wait and leave for workers, per batching policy (dispatch-policy.ts). */
  private readonly policies: Record<SchedulerConfig['policy'], DispatchPolicy>;
  /** Workers' results folded back into this state (result-folding.ts). */
  private readonly folding: ResultFolding;
  /** Models with queued requests: placement and expiry only look at these. */
  private readonly modelsWithDemand = new Set<string>();
  /** Which models are pinned, taken out of service, or still to unload (model-service.ts). */
  private readonly service = new ModelService();
  /** Models whose INFERs use ramps: their workers need chains for the current ramp set. */
  private readonly exitModels = new Set<string>();
  private numQueued = 0;
  /** Action ids, start windows, what is in flight and when it is overdue (action-book.ts). */
  private readonly book: ActionBook;
  /** Batches into INFER actions, ramp sets into RAMPS actions (infer-planning.ts). */
  private readonly inferPlanning: InferPlanning;

  constructor(models: readonly ModelSpec[], config: Partial<SchedulerConfig> = {}) {
    this.config = { ...DEFAULT_SCHEDULER_CONFIG, ...config };
    this.estimator = new LatencyEstimator(this.config.estimator);
    this.estimates = new BatchEstimates(this.workers, this.estimator, this.config);
    this.admission = new Admission(this.estimates, this.config);
    this.placement = new Placement(this.workers, this.modelsWithDemand, this.estimates, this.estimator, this.config);
    this.book = new ActionBook(this.config);
    this.inferPlanning = new InferPlanning(this.book, this.estimates, this.estimator, this.config);
    const host: DispatchHost = {
      model: (name) => this.models.get(name)!,
      dequeue: (model, count, from) => this.dequeue(model, count, from),
      planInfer: (worker, model, plan, nowNs) => this.inferPlanning.planInfer(worker, model, plan, nowNs),
      dropped: (request, nowNs) => this.dropped(request, nowNs),
      fail: (request, status, code, message, nowNs) => this.fail(request, status, code, message, nowNs),
    };
    this.policies = {
      deadline: new DeadlineDispatch(host, this.workers, this.estimator, this.estimates, this.admission, this.config),
      fifo: new FifoDispatch(host, this.estimates, this.config),
    };
    this.folding = new ResultFolding({
      workers: this.workers,
      models: this.models,
      estimator: this.estimator,
      admission: this.admission,
      placement: this.placement,
      enqueue: (model, request) => this.enqueue(model, request),
      fail: (...args) => this.fail(...args),
    });
    for (const spec of models) {
      this.models.set(spec.name, newModelState(spec));
      if (spec.earlyExit) this.setExitConfig(spec.name, spec.earlyExit);
    }
  }

  /** The policy in force (`setPolicy` switches it for everything planned from then on). */
  private get dispatch(): DispatchPolicy {
    return this.policies[this.config.policy];
  }

  // -------------------------------------------------------------------------------------------
  // Workers

  addWorker(workerId: string, memoryBudgetBytes: number): void {
    if (this.workers.has(workerId)) throw new Error(`worker ${workerId} is already registered`);
    this.workers.set(workerId, newWorkerState(workerId, memoryBudgetBytes, this.config.timeline));
  }

  /** Keeps a model loaded on every worker whose memory allows, without waiting for demand. */
  pin(modelName: string): void {
    if (!this.models.has(modelName)) throw new Error(`cannot preload unknown model '${modelName}'`);
    this.service.pin(modelName);
  }

  hasModel(modelName: string): boolean {
    return this.models.has(modelName);
  }

  modelSpec(modelName: string): ModelSpec | undefined {
    return this.models.get(modelName)?.spec;
  }

  /** Stops keeping a model loaded and unloads it from every worker once it has no demand. */
  requestUnload(modelName: string): void {
    if (!this.models.has(modelName)) throw new Error(`unknown model '${modelName}'`);
    this.service.takeOut(modelName);
  }

  /** Undoes requestUnload and keeps the model loaded on every worker with room (repository load). */
  requestLoad(modelName: string): void {
    if (!this.models.has(modelName)) throw new Error(`cannot load unknown model '${modelName}'`);
    this.service.putBack(modelName);
  }

  /** Whether a repository unload took the model out of service (until a repository load). */
  isOutOfService(modelName: string): boolean {
    return this.service.isOut(modelName);
  }

  /** Where a model is: 'ready' (loaded somewhere), 'loading', or 'unavailable'. */
  modelState(modelName: string): 'ready' | 'loading' | 'unavailable' {
    const model = this.models.get(modelName);
    if (!model) return 'unavailable';
    const states = [...model.holders.values()].map((w) => w.instances.get(modelName)!.state);
    return states.includes('loaded') ? 'ready' : states.includes('loading') ? 'loading' : 'unavailable';
  }

  /** Switches the batching policy for everything planned from now on. */
  setPolicy(policy: SchedulerConfig['policy'], batchTimeoutNs = this.config.batchTimeoutNs, maxEnqueuedBatches = this.config.maxEnqueuedBatches): void {
    this.config.policy = policy;
    this.config.batchTimeoutNs = batchTimeoutNs;
    this.config.maxEnqueuedBatches = maxEnqueuedBatches;
  }

  /** Starts a model's exit timeline over, as its package has it (a new exit mode or tuning). */
  resetExitTimeline(modelName: string, timeline: ExitTimeline, loadedRampSet: string): void {
    const model = this.models.get(modelName);
    if (!model) throw new Error(`unknown model '${modelName}'`);
    model.spec.exitTimeline = timeline;
    model.spec.loadedRampSet = loadedRampSet;
  }

  /** Sets (or clears) a model's early-exit configuration for the INFERs planned from now on. */
  setExitConfig(modelName: string, config: ExitConfig | undefined): void {
    const model = this.models.get(modelName);
    if (!model) throw new Error(`unknown model '${modelName}'`);
    if (config) model.spec.earlyExit = config;
    else delete model.spec.earlyExit;
    if (config && config.ramps.length > 0) this.exitModels.add(modelName);
    else this.exitModels.delete(modelName);
    // New thresholds or ramps change the exit rates: the timeline's evidence starts over, seeded
    // with the monitor's estimate under them.
    if (config && model.spec.exitTimeline)
      model.spec.exitTimeline.configure(exitConfigKey(config), config.ramps.length, config.exitRates, config.exitRatesBasis ?? 0);
  }

  hasWorker(workerId: string): boolean {
    return this.workers.has(workerId);
  }

  get numWorkers(): number {
    return this.workers.size;
  }

  /**
   * Forgets a worker (dead, frozen or disconnected). Requests of its in-flight INFERs go back to
   * their queues when another worker could still finish them in time; the rest are answered
   * WORKER_LOST now.
   */
  removeWorker(workerId: string, nowNs: number): RequestOutcome[] {
    const worker = this.workers.get(workerId);
    if (!worker) return [];
    this.workers.delete(workerId);
    this.estimator.forgetWorker(workerId);
    for (const name of worker.instances.keys()) this.models.get(name)!.holders.delete(workerId);
    const outcomes: RequestOutcome[] = [];
    for (const inflight of worker.inflight.values()) {
      for (const request of inflight.requests) {
        const model = this.models.get(request.model)!;
        const ahead = model.queue.countAhead(request.deadlineNs);
        if (
          this.workers.size > 0 &&
          this.estimates.earliestCompletionNs(model, nowNs, ahead, request.seqLength ?? 0, request.deadlineNs) <= request.deadlineNs
        ) {
          this.enqueue(model, request);
        } else {
          outcomes.push(this.fail(request, 'ERROR', ErrorCode.WORKER_LOST, `worker ${workerId} was lost while running it`, nowNs));
        }
      }
    }
    return outcomes;
  }

  // -------------------------------------------------------------------------------------------
  // Arrivals

  /** Admits a request, or answers it at once (REJECTED) when it cannot be served in time. */
  onArrival(request: QueuedRequest, nowNs: number): RequestOutcome | null {
    this.estimator.ageAll(nowNs);
    const model = this.models.get(request.model);
    if (!model) return this.fail(request, 'REJECTED', ErrorCode.UNKNOWN_MODEL, `unknown model '${request.model}'`, nowNs);
    if (request.deadlineNs <= nowNs) {
      return this.fail(request, 'REJECTED', ErrorCode.INVALID_DEADLINE, 'the deadline has already passed', nowNs);
    }
    if (this.numQueued >= this.config.maxQueuedRequests) {
      return this.fail(request, 'REJECTED', ErrorCode.QUEUE_FULL, `${this.numQueued} requests queued (limit ${this.config.maxQueuedRequests})`, nowNs);
    }
    if (this.workers.size === 0) return this.fail(request, 'REJECTED', ErrorCode.NO_WORKERS, 'no worker is registered', nowNs);
    const refusal = this.dispatch.refusal(model, request, nowNs);
    if (refusal) return this.fail(request, 'REJECTED', refusal.code, refusal.message, nowNs);
    this.enqueue(model, request);
    return null;
  }

  // -------------------------------------------------------------------------------------------
  // Planning

  plan(nowNs: number): PlanResult {
    const result: PlanResult = { actions: [], outcomes: [] };
    this.estimator.ageAll(nowNs);
    // 0. give up on actions whose result never came
    this.book.expireOverdue(this.workers.values(), nowNs, {
      forgetInstance: (worker, model) => this.forgetInstance(worker, model),
      requeue: (r) => this.enqueue(this.models.get(r.model)!, r), // expiry answers the hopeless
    });
    // 1. place models with demand (LOAD, UNLOAD to make room)
    const placementActions = this.placementActions(nowNs, result);
    for (const name of this.modelsWithDemand) {
      if (!this.service.isUnloading(name)) this.placement.placeDemanded(this.models.get(name)!, nowNs, placementActions);
    }
    for (const name of this.service.pinned) this.placement.placePinned(this.models.get(name)!, nowNs, placementActions);
    for (const name of this.exitModels) this.inferPlanning.prepareRampSets(this.models.get(name)!, nowNs, result.actions);
    for (const name of this.service.unloading()) {
      if (this.placement.unloadEverywhere(this.models.get(name)!, placementActions)) this.service.unloaded(name);
    }
    // 2. drop queued requests that can no longer be served in time (each policy has its rule),
    //    and collect the workers holding a model with demand that are free within the horizon
    //    (only they can take work; their sort keys are read once). Deleting from a Set while
    //    iterating it is well defined.
    const dispatch = this.dispatch;
    dispatch.beginPlan(nowNs);
    const seen = new Set<WorkerState>();
    const free: { worker: WorkerState; busyUntilNs: number; idleSinceNs: number }[] = [];
    for (const name of this.modelsWithDemand) {
      const model = this.models.get(name)!;
      dispatch.expire(model, nowNs, result);
      if (model.queue.length === 0) continue;
      for (const worker of model.holders.values()) {
        if (seen.has(worker)) continue;
        seen.add(worker);
        if (!dispatch.takesWork(worker, nowNs)) continue;
        // NOTE: idle workers count as equally free whatever their learned start delays: a few µs
        // apart would otherwise send every lone request to the same one
        free.push({ worker, busyUntilNs: Math.max(nowNs, worker.timeline.plannedEndNs(nowNs)), idleSinceNs: worker.timeline.idleSinceNs() });
      }
    }
    // 3. fill each of those workers' timelines up to the horizon, earliest-free first; among
    //    idle workers the one idle longest first, so light load is spread rather than always
    //    landing on the first worker registered
    free.sort((a, b) => a.busyUntilNs - b.busyUntilNs || a.idleSinceNs - b.idleSinceNs);
    for (const { worker } of free) dispatch.fill(worker, nowNs, result);
    return result;
  }

  /**
   * When the core next needs `plan()` without any new event: a worker with work waiting enters
   * its schedule-ahead horizon, a queued request is about to become infeasible, or an in-flight
   * action's result becomes overdue.
   */
  nextWakeupNs(nowNs: number): number | undefined {
    let wakeNs = Number.POSITIVE_INFINITY;
    for (const name of this.modelsWithDemand) {
      const model = this.models.get(name)!;
      const head = model.queue.peek();
      if (head) wakeNs = Math.min(wakeNs, this.dispatch.wakeAtNs(model, head));
      for (const worker of model.holders.values()) {
        if (worker.instances.get(name)?.state === 'loaded') {
          wakeNs = Math.min(wakeNs, worker.timeline.freeAtNs(nowNs) - this.config.scheduleAheadNs);
        }
      }
    }
    wakeNs = Math.min(wakeNs, this.book.nextCheckNs + 1);
    return Number.isFinite(wakeNs) ? Math.max(wakeNs, nowNs) : undefined;
  }

  /** How placement (placement.ts) plans LOADs and UNLOADs and answers requests in this plan. */
  private placementActions(nowNs: number, result: PlanResult): PlacementActions {
    return {
      plan: (worker, body, durationNs, latestDeltaNs) => {
        const action = { ...body, ...this.book.window(worker.timeline.freeAtNs(nowNs), durationNs, latestDeltaNs, nowNs) } as LoadAction | UnloadAction;
        this.book.commit(worker, action, [], nowNs);
        result.actions.push({ workerId: worker.id, action, requests: [] });
      },
      forget: (worker, model) => this.forgetInstance(worker, model),
      failQueued: (model, code, message) => {
        for (const r of this.dequeue(model, model.queue.length)) result.outcomes.push(this.fail(r, 'ERROR', code, message, nowNs));
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Results

  /**
   * Every request the core still owns (queued, or in an action in flight). The adapter answers any
   * other request it holds after a handler failed part-way, so that none is lost.
   */
  trackedRequestIds(): Set<number> {
    const ids = new Set<number>();
    for (const model of this.models.values()) for (let i = 0; i < model.queue.length; i++) ids.add(model.queue.at(i)!.id);
    for (const worker of this.workers.values()) {
      for (const inflight of worker.inflight.values()) for (const r of inflight.requests) ids.add(r.id);
    }
    return ids;
  }

  /**
   * Rows of an INFER answered at a ramp while the batch goes on: each gets its final answer now
   * (OK, early). Later results for those rows only feed accuracy monitoring.
   */
  onExit(workerId: string, msg: ExitMsg, nowNs: number): RequestOutcome[] {
    return this.folding.onExit(workerId, msg, nowNs);
  }

  /**
   * Why a result cannot belong to the action it names (undefined when it can). A result that does
   * not match is ignored: its action stays in flight until it is overdue, and is then re-planned.
   */
  resultMismatch(workerId: string, msg: ActionResultMsg): string | undefined {
    return this.folding.resultMismatch(workerId, msg);
  }

  /** Folds a worker's result back into the state: answers, estimates, what a worker holds (result-folding.ts). */
  onResult(workerId: string, msg: ActionResultMsg, nowNs: number): ResultFold {
    return this.folding.onResult(workerId, msg, nowNs);
  }

  private forgetInstance(worker: WorkerState, model: string): void {
    this.folding.forgetInstance(worker, model);
  }

  // -------------------------------------------------------------------------------------------
  // Queues and answers

  private enqueue(model: ModelState, request: QueuedRequest): void {
    model.queue.insert(request);
    this.numQueued++;
    this.modelsWithDemand.add(model.spec.name);
  }

  private dequeue(model: ModelState, count: number, from = 0): QueuedRequest[] {
    const taken = model.queue.take(count, from);
    this.numQueued -= taken.length;
    if (model.queue.length === 0) this.modelsWithDemand.delete(model.spec.name);
    return taken;
  }

  private dropped(request: QueuedRequest, nowNs: number): RequestOutcome {
    // It would have finished after its deadline at the earliest (a lower bound of its error).
    this.admission.settle(request, Math.max(nowNs, request.deadlineNs));
    return this.fail(request, 'DEADLINE_MISSED', ErrorCode.DROPPED_BEFORE_EXECUTION, 'no worker could start it in time', nowNs);
  }

  private fail(request: QueuedRequest, status: RequestStatus, code: number, message: string, nowNs: number, workerId?: string): RequestOutcome {
    const outcome: RequestOutcome = { requestId: request.id, status, code, message, completeNs: nowNs };
    if (workerId !== undefined) outcome.workerId = workerId;
    return outcome;
  }

  // -------------------------------------------------------------------------------------------
  // Introspection

  snapshot(nowNs: number): SchedulerSnapshot {
    return snapshotOf(this.models, this.workers, this.estimator, this.numQueued, nowNs);
  }
}
