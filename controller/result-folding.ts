/**
 * Folding a worker's results back into the planner's state: an INFER's answers (each request's one
 * final answer, OK or late, or its batch planned again when the worker could not start it), early
 * answers at a ramp while the batch goes on, what a finished early-exit run teaches the timeline
 * (exit-folding.ts), the estimator's new samples (whole-model-equivalent durations, LOAD profiles,
 * RAMPS durations), what a worker now holds (LOADs, late LOADs adopted, ramp sets ready) and the
 * action log's record of predicted against actual.
 *
 * Part of the pure core: no clock, no sockets; the scheduler (its facade) owns the state it
 * folds into and passes it in as a FoldingHost.
 */
import { ErrorCode, describeError } from '../shared/error-codes.js';
import type { ActionResultMsg, EarlyExitPlan, ExitMsg, InferAction, LoadAction, RampsWarmup, RequestStatus, StageTiming, Action } from '../shared/protocol.js';
import type { Admission } from './admission.js';
import { rampSetKey, type InflightAction, type ModelState, type WorkerState } from './cluster-state.js';
import { foldExitRun } from './exit-folding.js';
import type { LatencyEstimator } from './latency-estimator.js';
import type { Placement } from './placement.js';
import { profileKey } from './profile-key.js';
import type { QueuedRequest } from './request-queue.js';
import type { RequestOutcome } from './core-outputs.js';

/** Predicted against actual, for the action log. */
export interface ActionRecord {
  actionId: number;
  actionType: Action['type'];
  workerId: string;
  model: string;
  code: number;
  batchSize: number;
  numRequests: number;
  expectedStartNs: number;
  expectedDurationNs: number;
  actualStartNs: number;
  actualDurationNs: number;
  expectedCompleteNs: number;
  actualCompleteNs: number;
  receivedNs: number;
  sentNs: number;
  /** When the action was planned (its earliest start) and the latest start its window allowed. */
  plannedNs: number;
  latestNs: number;
  /** INFERs: the stages as predicted (shares of the expected duration) and as the worker measured them. */
  expectedStages: StageTiming[];
  stages: StageTiming[];
}

export interface ResultFold {
  outcomes: RequestOutcome[];
  record?: ActionRecord;
  /** The ramp configuration the INFER ran with (for accuracy monitoring of its feedback). */
  exitPlan?: EarlyExitPlan;
}

/** Worker codes after which a batch is simply planned again (nothing ran, nothing is wrong with it). */
const RETRYABLE_INFER_CODES = new Set<number>([ErrorCode.INFER_TOO_LATE, ErrorCode.INFER_NOT_LOADED]);
/** LOAD codes that mean the model can never load on that worker. */
const PERMANENT_LOAD_CODES = new Set<number>([ErrorCode.LOAD_UNKNOWN_MODEL, ErrorCode.LOAD_FAILED]);
/** Estimator keys (in place of a batch size) for RAMPS durations, by warm-up; LOADs use 0. */
export const RAMPS_ESTIMATE_KEY = -1;
export const SMOKE_RAMPS_ESTIMATE_KEY = -2;
export const rampsEstimateKey = (warmup: RampsWarmup | undefined): number => (warmup === 'smoke' ? SMOKE_RAMPS_ESTIMATE_KEY : RAMPS_ESTIMATE_KEY);

/** What folding reads and changes of the scheduler's state. */
export interface FoldingHost {
  readonly workers: ReadonlyMap<string, WorkerState>;
  readonly models: ReadonlyMap<string, ModelState>;
  readonly estimator: LatencyEstimator;
  readonly admission: Admission;
  readonly placement: Placement;
  /** Puts a request back in its model's queue (its batch is planned again). */
  enqueue(model: ModelState, request: QueuedRequest): void;
  /** A request's final answer when it did not succeed. */
  fail(request: QueuedRequest, status: RequestStatus, code: number, message: string, nowNs: number, workerId?: string): RequestOutcome;
}

export class ResultFolding {
  constructor(private readonly host: FoldingHost) {}

  /**
   * Rows of an INFER answered at a ramp while the batch goes on: each gets its final answer now
   * (OK, early). Later results for those rows only feed accuracy monitoring.
   */
  onExit(workerId: string, msg: ExitMsg, nowNs: number): RequestOutcome[] {
    const inflight = this.host.workers.get(workerId)?.inflight.get(msg.actionId);
    if (!inflight || inflight.action.type !== 'infer') return [];
    const answered = (inflight.answeredRows ??= new Set());
    const outcomes: RequestOutcome[] = [];
    const how = `answered at ramp ${msg.siteId}`;
    // NOTE: one outcome object per row, fields set in place: the exits of every compact batch
    // pass here, and the controller's allocation per request is what its GC pauses cost.
    for (let index = 0; index < msg.rows.length; index++) {
      const row = msg.rows[index]!;
      const request = inflight.requests[row];
      if (!request || answered.has(row)) continue;
      answered.add(row);
      const outcome = this.answer(request, nowNs, { workerId, actionId: msg.actionId, batchSize: inflight.action.batchSize, batchIndex: index }, how);
      outcome.early = true;
      outcome.exitRamp = msg.siteId;
      outcome.confidence = msg.confidences[index]!;
      outcome.prediction = msg.predictions[index]!;
      outcomes.push(outcome);
    }
    return outcomes;
  }

  /**
   * Why a result cannot belong to the action it names (undefined when it can). A result that does
   * not match is ignored: its action stays in flight until it is overdue, and is then re-planned.
   */
  resultMismatch(workerId: string, msg: ActionResultMsg): string | undefined {
    const inflight = this.host.workers.get(workerId)?.inflight.get(msg.actionId);
    if (!inflight) return undefined; // stale results are dropped by onResult
    const action = inflight.action;
    if (action.type !== msg.actionType || action.modelName !== msg.modelName)
      return `result for ${msg.actionType} ${msg.modelName} names ${action.type} ${action.modelName}'s action ${action.actionId}`;
    if (action.type !== 'infer' || msg.code !== ErrorCode.OK) return undefined;
    const rows = msg.outputRows?.length ?? action.batchSize;
    if ((msg.outputs ?? []).some((o) => o.shape[0] !== rows)) return `INFER ${action.actionId} returned outputs without ${rows} rows`;
    if (msg.outputRows?.some((row) => row >= action.numRequests)) return `INFER ${action.actionId} returned rows beyond its ${action.numRequests} requests`;
    return undefined;
  }

  onResult(workerId: string, msg: ActionResultMsg, nowNs: number): ResultFold {
    const worker = this.host.workers.get(workerId);
    const inflight = worker?.inflight.get(msg.actionId);
    if (worker && !inflight) this.adoptLateLoad(worker, msg, nowNs);
    if (!worker || !inflight) return { outcomes: [] }; // stale: given up on, or the worker was removed meanwhile
    worker.inflight.delete(msg.actionId);
    const endNs = msg.timing.endNs > 0 ? msg.timing.endNs : nowNs;
    worker.timeline.complete(msg.actionId, endNs, msg.timing.startNs);
    const record = this.record(inflight, msg);
    switch (inflight.action.type) {
      case 'infer': {
        const fold: ResultFold = { outcomes: this.foldInfer(worker, inflight, msg, nowNs), record };
        if (inflight.action.earlyExit) fold.exitPlan = inflight.action.earlyExit;
        return fold;
      }
      case 'load':
        this.foldLoad(worker, inflight.action, msg, nowNs);
        return { outcomes: [], record };
      case 'unload':
        return { outcomes: [], record };
      case 'ramps': {
        const instance = worker.instances.get(inflight.action.modelName);
        const key = rampSetKey(inflight.action.siteIds, inflight.action.fused);
        if (instance && msg.code === ErrorCode.OK) {
          instance.readyRampSets.add(key);
          instance.pendingRampSets.delete(key);
          this.host.estimator.record(inflight.action.modelName, worker.id, rampsEstimateKey(inflight.action.warmup), msg.timing.durationNs, nowNs);
        }
        // NOTE: a failed set stays in pendingRampSets, so it is not retried on this worker.
        return { outcomes: [], record };
      }
    }
  }

  private foldInfer(worker: WorkerState, inflight: InflightAction, msg: ActionResultMsg, nowNs: number): RequestOutcome[] {
    const action = inflight.action as InferAction;
    if (msg.code === ErrorCode.OK) {
      // Learn whole-model-equivalent durations: divide out what the ramps and exits did.
      this.host.estimator.record(
        action.modelName,
        worker.id,
        profileKey(action.batchSize, action.sequenceLength),
        msg.timing.durationNs / this.foldExits(worker, action, msg, nowNs),
        nowNs,
      );
      const answered = inflight.answeredRows;
      const outputIndex = (row: number) => (msg.outputRows ? msg.outputRows.indexOf(row) : row);
      return inflight.requests.flatMap((r, row) => {
        if (answered?.has(row)) return [];
        const batchIndex = outputIndex(row);
        if (batchIndex < 0) {
          return [this.host.fail(r, 'ERROR', ErrorCode.INFER_RUNTIME_ERROR, 'the worker returned no output for this row', nowNs, worker.id)];
        }
        const outcome = this.answer(r, nowNs, { workerId: worker.id, actionId: action.actionId, batchSize: action.batchSize, batchIndex }, 'finished');
        if (action.earlyExit) outcome.early = false;
        return [outcome];
      });
    }
    if (RETRYABLE_INFER_CODES.has(msg.code)) {
      if (msg.code === ErrorCode.INFER_NOT_LOADED) this.forgetInstance(worker, action.modelName);
      for (const r of inflight.requests) this.host.enqueue(this.host.models.get(r.model)!, r);
      return [];
    }
    return inflight.requests.map((r) => this.host.fail(r, 'ERROR', msg.code, msg.message ?? describeError(msg.code), nowNs, worker.id));
  }

  /** A request's answer from a run: OK by its deadline, else DEADLINE_MISSED saying by how much; admission learns its error. */
  private answer(
    request: QueuedRequest,
    nowNs: number,
    where: Required<Pick<RequestOutcome, 'workerId' | 'actionId' | 'batchSize' | 'batchIndex'>>,
    how: string,
  ): RequestOutcome {
    this.host.admission.settle(request, nowNs);
    const met = nowNs <= request.deadlineNs;
    const outcome: RequestOutcome = {
      requestId: request.id,
      status: met ? 'OK' : 'DEADLINE_MISSED',
      code: met ? ErrorCode.OK : ErrorCode.DEADLINE_MISSED,
      completeNs: nowNs,
      ...where,
    };
    if (!met) outcome.message = `${how} ${((nowNs - request.deadlineNs) / 1e6).toFixed(2)} ms after its deadline`;
    return outcome;
  }

  /** What a finished early-exit INFER teaches its model's timeline, and its factor against the whole model (exit-folding.ts). */
  private foldExits(worker: WorkerState, action: InferAction, msg: ActionResultMsg, nowNs: number): number {
    const timeline = this.host.models.get(action.modelName)!.spec.exitTimeline;
    if (!timeline) return 1;
    const wholeNs = this.host.estimator.expectedNs(action.modelName, worker.id, profileKey(action.batchSize, action.sequenceLength));
    return foldExitRun(timeline, action, msg, wholeNs, nowNs);
  }

  /**
   * A LOAD the controller gave up on that the worker finished after all: the model now sits in its
   * memory. Forgetting it would over-commit that memory (and every later LOAD of it there would be
   * refused as already loaded), so the controller takes it as loaded, with the profile it reports.
   */
  private adoptLateLoad(worker: WorkerState, msg: ActionResultMsg, nowNs: number): void {
    const action = worker.abandonedLoads.get(msg.actionId);
    if (!action || msg.actionType !== 'load') return;
    worker.abandonedLoads.delete(msg.actionId);
    if (msg.code !== ErrorCode.OK) return;
    const model = this.host.models.get(action.modelName);
    if (!model) return;
    if (!worker.instances.has(action.modelName)) {
      // NOTE: the memory is the worker's whether or not it fits the plan; eviction makes room later.
      worker.instances.set(action.modelName, {
        model: action.modelName,
        state: 'loading',
        weightsBytes: this.host.placement.weightsBytes(model),
        lastUsedNs: nowNs,
        readyRampSets: new Set(),
        served: false,
        pendingRampSets: new Set(),
      });
      worker.usedBytes += this.host.placement.weightsBytes(model);
      model.holders.set(worker.id, worker);
    }
    this.foldLoad(worker, action, msg, nowNs);
  }

  private foldLoad(worker: WorkerState, action: LoadAction, msg: ActionResultMsg, nowNs: number): void {
    const instance = worker.instances.get(action.modelName);
    const model = this.host.models.get(action.modelName)!;
    // A LOAD re-planned after an adopted late one: the worker already holds the model, as the controller knows.
    if (msg.code === ErrorCode.LOAD_ALREADY_LOADED && instance?.state === 'loaded') return;
    if (msg.code !== ErrorCode.OK) {
      if (instance) this.forgetInstance(worker, action.modelName);
      // Insufficient memory is as final as a broken model for this worker: its budget is its own.
      if (PERMANENT_LOAD_CODES.has(msg.code) || msg.code === ErrorCode.LOAD_INSUFFICIENT_MEMORY) {
        worker.failedModels.add(action.modelName);
      }
      return;
    }
    this.host.estimator.record(action.modelName, worker.id, 0, msg.timing.durationNs, nowNs);
    for (const entry of msg.profile ?? []) {
      this.host.estimator.seed(action.modelName, worker.id, profileKey(entry.batchSize, entry.sequenceLength), entry.durationNs, entry.p99DurationNs, nowNs);
    }
    if (instance) {
      instance.state = 'loaded';
      if (model.spec.loadedRampSet !== undefined) instance.readyRampSets.add(model.spec.loadedRampSet);
      if (msg.weightsBytes !== undefined && msg.weightsBytes > 0) {
        worker.usedBytes += msg.weightsBytes - instance.weightsBytes;
        instance.weightsBytes = msg.weightsBytes;
        model.measuredWeightsBytes = msg.weightsBytes;
      }
    }
  }

  /** The worker no longer holds the model (a failed LOAD, an INFER refused as not loaded). */
  forgetInstance(worker: WorkerState, model: string): void {
    const instance = worker.instances.get(model);
    if (!instance) return;
    worker.usedBytes -= instance.weightsBytes;
    worker.instances.delete(model);
    this.host.models.get(model)!.holders.delete(worker.id);
  }

  private record(inflight: InflightAction, msg: ActionResultMsg): ActionRecord {
    const a = inflight.action;
    return {
      actionId: a.actionId,
      actionType: a.type,
      workerId: inflight.workerId,
      model: a.modelName,
      code: msg.code,
      batchSize: a.type === 'infer' ? a.batchSize : 0,
      numRequests: inflight.requests.length,
      expectedStartNs: a.expectedStartNs,
      expectedDurationNs: a.expectedDurationNs,
      actualStartNs: msg.timing.startNs,
      actualDurationNs: msg.timing.durationNs,
      expectedCompleteNs: a.expectedStartNs + a.expectedDurationNs,
      actualCompleteNs: msg.timing.endNs,
      receivedNs: msg.timing.receivedNs,
      sentNs: msg.timing.sentNs,
      plannedNs: a.earliestNs,
      latestNs: a.latestNs,
      expectedStages: inflight.expectedStages ?? [],
      stages: msg.stages ?? [],
    };
  }
}
