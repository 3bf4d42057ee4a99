/**
 * How a chosen batch becomes an INFER action: its window, its inputs' shapes (a text batch's
 * padded sequence length), whether it runs with ramps (the chain, or release's fused model) and
 * which rows are kept as compact mode's monitoring sample, and the stages the worker is expected
 * to report. Also the RAMPS actions that build the chains for a model's current ramp set.
 */
import type { InferAction, RampsAction, StageTiming } from '../shared/protocol.js';
import type { ActionBook } from './action-book.js';
import type { BatchEstimates } from './batch-estimates.js';
import { rampSetKey, type ModelState, type WorkerState } from './cluster-state.js';
import type { LatencyEstimator } from './latency-estimator.js';
import type { QueuedRequest } from './request-queue.js';
import { rampsEstimateKey } from './result-folding.js';
import type { PlannedAction } from './core-outputs.js';
import type { SchedulerConfig } from './scheduler-config.js';

export interface InferPlan {
  requests: QueuedRequest[];
  batchSize: number;
  /** Text models: the batch's padded length; 0 otherwise. */
  seqLength: number;
  durationNs: number;
  startNs: number;
  /** How far past `startNs` the worker may still start it (default: the configured delta). */
  latestDeltaNs?: number;
  /** Release mode: run the fused model (whole model with the heads as outputs) rather than the chain. */
  fused: boolean;
}

export class InferPlanning {
  constructor(
    private readonly book: ActionBook,
    private readonly estimates: BatchEstimates,
    private readonly estimator: LatencyEstimator,
    private readonly config: Pick<SchedulerConfig, 'latestDeltaNs'>,
  ) {}

  planInfer(worker: WorkerState, model: ModelState, plan: InferPlan, nowNs: number): PlannedAction {
    const { requests, batchSize, seqLength } = plan;
    const action: InferAction = {
      type: 'infer',
      ...this.book.window(plan.startNs, plan.durationNs, plan.latestDeltaNs ?? this.config.latestDeltaNs, nowNs),
      modelName: model.spec.name,
      batchSize,
      numRequests: requests.length,
      // A -1 after the batch dimension is the sequence axis: the batch's padded length.
      inputs: model.spec.inputs.map((s) => ({ name: s.name, dtype: s.dtype, shape: [batchSize, ...s.shape.slice(1).map((d) => (d < 0 ? seqLength : d))] })),
    };
    if (seqLength > 0) action.sequenceLength = seqLength;
    const exits = model.spec.earlyExit;
    // Until the worker has built the chain for the current ramp set, it runs the model whole.
    // NOTE: monitoring samples are chosen by request id (compact) or action id (release batches
    // off the chain), so they are spread evenly and reproducible.
    const every = exits && exits.monitorFraction > 0 ? Math.max(1, Math.round(1 / exits.monitorFraction)) : Number.POSITIVE_INFINITY;
    // A release batch off the chain runs the plain whole model, except a monitoring sample of
    // batches that run the fused model (its heads' outputs feed the tuner): the heads and their
    // feedback cost 3-5 % of a batch in serving, which under sustained load is throughput. Until
    // the exit evidence is informed, every such batch runs fused, to gather it.
    const informed = model.spec.exitTimeline?.currentEvidence?.informed ?? false;
    const plainWhole = plan.fused && informed && action.actionId % every !== 0;
    if (exits && exits.ramps.length > 0 && this.estimates.rampsReady(worker, model) && !plainWhole) {
      const keepRows = exits.mode === 'compact' ? requests.flatMap((r, row) => (r.id % every === 0 ? [row] : [])) : [];
      action.earlyExit = {
        mode: exits.mode,
        ramps: exits.ramps,
        keepRows,
        ...(exits.mode === 'compact' ? { monitorFraction: 1 / every } : {}),
        ...(plan.fused ? { fused: true } : {}),
      };
    }
    this.book.commit(worker, action, requests, nowNs);
    worker.inflight.get(action.actionId)!.expectedStages = expectedStages(model, action);
    const instance = worker.instances.get(model.spec.name)!;
    instance.lastUsedNs = nowNs;
    instance.served = true;
    return { workerId: worker.id, action, requests };
  }

  /**
   * Plans a RAMPS action on every holder that lacks the chain for the model's current ramp set,
   * one holder at a time, so the others keep serving (the whole model) meanwhile: before a holder
   * serves, with a full warm-up; during service (a ramp change), with a smoke run. NOTE: first
   * builds used to go on every holder at once; on a host where a fused build took 830 ms, traffic
   * that came right after the LOAD found no worker for that long.
   */
  prepareRampSets(model: ModelState, nowNs: number, actions: PlannedAction[]): void {
    const ramps = model.spec.earlyExit?.ramps ?? [];
    if (ramps.length === 0) return;
    // Release mode also needs the fused model, for batches with a queue behind them (batch-estimates.ts).
    const fused = this.estimates.needsFused(model);
    const siteIds = ramps.map((r) => r.siteId);
    const key = rampSetKey(siteIds, fused);
    let anyBuilding = false;
    for (const worker of model.holders.values())
      for (const f of worker.inflight.values()) anyBuilding ||= f.action.type === 'ramps' && f.action.modelName === model.spec.name;
    for (const worker of model.holders.values()) {
      const instance = worker.instances.get(model.spec.name)!;
      if (instance.state !== 'loaded' || instance.readyRampSets.has(key) || instance.pendingRampSets.has(key)) continue;
      const warmup = instance.served ? 'smoke' : 'full';
      if (anyBuilding) continue;
      anyBuilding = true;
      instance.pendingRampSets.add(key);
      const startNs = worker.timeline.freeAtNs(nowNs);
      const durationNs =
        this.estimator.estimateNs(model.spec.name, worker.id, rampsEstimateKey(warmup)) ?? this.estimates.rampsPriorNs(worker, model, warmup, fused);
      const action: RampsAction = {
        type: 'ramps',
        ...this.book.window(startNs, durationNs, Math.max(this.config.latestDeltaNs, durationNs), nowNs),
        modelName: model.spec.name,
        siteIds,
        ...(fused ? { fused: true } : {}),
        warmup,
      };
      this.book.commit(worker, action, [], nowNs);
      actions.push({ workerId: worker.id, action, requests: [] });
    }
  }
}

/** The stages the worker will report for an INFER, with the share of its expected duration each is predicted to take. */
export function expectedStages(model: ModelState, action: InferAction): StageTiming[] {
  const plan = action.earlyExit;
  const timeline = model.spec.exitTimeline;
  if (!plan || plan.ramps.length === 0 || !timeline) return [{ name: 'model', durationNs: action.expectedDurationNs, numRows: action.batchSize }];
  if (plan.fused) return [{ name: 'fused', durationNs: action.expectedDurationNs, numRows: action.batchSize }];
  const siteIds = plan.ramps.map((r) => r.siteId);
  const keepShare = plan.mode === 'compact' ? plan.keepRows.length / Math.max(1, action.numRequests) : 0;
  const survivors = timeline.timing(plan.mode, siteIds, action.numRequests, action.batchSize, keepShare).survivors.expected;
  return timeline.expectedStages(siteIds, survivors, action.expectedDurationNs);
}
