/**
 * The planner (Clockwork's INFER5, with early answers): each model's requests ordered by
 * deadline; a request is admitted only if the planned drain of its queue finishes it in time
 * (admission.ts); a worker gets work only while its predicted timeline frees up within
 * `scheduleAheadNs`, and then the loaded model whose head must start soonest, in the largest batch
 * whose every member still finishes in time; queued requests that can no longer finish anywhere
 * are answered at once.
 */
import { ErrorCode } from '../shared/error-codes.js';
import type { Admission } from './admission.js';
import { chooseBatch, type BatchChoice } from './batch-choice.js';
import type { BatchEstimates } from './batch-estimates.js';
import type { ModelState, WorkerState } from './cluster-state.js';
import type { DispatchHost, DispatchPolicy } from './dispatch-policy.js';
import type { LatencyEstimator } from './latency-estimator.js';
import { profileKey } from './profile-key.js';
import type { QueuedRequest } from './request-queue.js';
import type { PlanResult } from './core-outputs.js';
import type { SchedulerConfig } from './scheduler-config.js';

export class DeadlineDispatch implements DispatchPolicy {
  /** The latest predicted free time over all workers, read once per plan. */
  private latestFreeNs = 0;

  constructor(
    private readonly host: DispatchHost,
    private readonly workers: ReadonlyMap<string, WorkerState>,
    private readonly estimator: LatencyEstimator,
    private readonly estimates: BatchEstimates,
    private readonly admission: Admission,
    /** The scheduler's config (changed in place by setPolicy). */
    private readonly config: SchedulerConfig,
  ) {}

  refusal(model: ModelState, request: QueuedRequest, nowNs: number): { code: number; message: string } | undefined {
    const { refusal } = this.admission.admit(model, request, nowNs);
    return refusal === undefined ? undefined : { code: ErrorCode.CANNOT_MEET_DEADLINE, message: refusal };
  }

  beginPlan(nowNs: number): void {
    this.latestFreeNs = this.latestFreeAtNs(nowNs);
  }

  /** Workers that free up within the schedule-ahead horizon. */
  takesWork(worker: WorkerState, nowNs: number): boolean {
    return worker.timeline.freeAtNs(nowNs) < nowNs + this.config.scheduleAheadNs;
  }

  wakeAtNs(model: ModelState, head: QueuedRequest): number {
    return head.deadlineNs - this.estimates.batch1EstimateNs(model);
  }

  /**
   * Answers the queued requests that can no longer finish anywhere. The latest predicted free time of
   * any worker (read once per plan, `beginPlan`) makes the common case one lookup: when the
   * head finishes in time even if started that late, on a holder that need not be the fastest,
   * the full check below could not expire it either (its start and batch-1 time are minima).
   */
  expire(model: ModelState, nowNs: number, result: PlanResult): void {
    const latestFreeNs = this.latestFreeNs;
    const head = model.queue.peek();
    if (!head) return;
    const name = model.spec.name;
    const batch1Key = profileKey(model.spec.batchSizes[0]!, head.seqLength ?? 0);
    for (const holder of model.holders.values()) {
      const boundNs = this.estimator.estimateNs(name, holder.id, batch1Key);
      if (boundNs !== undefined && latestFreeNs + boundNs <= head.deadlineNs) return;
      break; // one holder is enough for the shortcut
    }
    // One pass over the candidate workers: the earliest start anywhere, and the fastest batch 1.
    let startNs = Number.POSITIVE_INFINITY;
    let batch1Ns = Number.POSITIVE_INFINITY;
    for (const worker of this.estimates.candidateWorkers(model)) {
      const est = this.estimator.estimateNs(name, worker.id, batch1Key);
      if (est !== undefined && est < batch1Ns) batch1Ns = est;
      if (worker.failedModels.has(name)) continue;
      const loadNs = worker.instances.has(name) ? 0 : (this.estimator.estimateNs(name, worker.id, 0) ?? this.config.defaultLoadNs);
      startNs = Math.min(startNs, worker.timeline.freeAtNs(nowNs) + loadNs);
    }
    if (!Number.isFinite(batch1Ns)) batch1Ns = model.spec.nominalBatch1Ns;
    while (model.queue.length > 0 && startNs + batch1Ns > model.queue.peek()!.deadlineNs) {
      result.outcomes.push(this.host.dropped(this.host.dequeue(model, 1)[0]!, nowNs));
    }
  }

  /** The latest predicted free time over all workers. */
  private latestFreeAtNs(nowNs: number): number {
    let latestNs = nowNs;
    for (const worker of this.workers.values()) latestNs = Math.max(latestNs, worker.timeline.freeAtNs(nowNs));
    return latestNs;
  }

  /**
   * While the worker frees up within the schedule-ahead horizon: the loaded model whose head must
   * start soonest, in the largest batch whose every member still finishes `bufferNs` before its
   * deadline (batch-choice.ts); a head that cannot finish here is dropped unless another copy
   * frees up earlier.
   */
  fill(worker: WorkerState, nowNs: number, result: PlanResult): void {
    const skipped = new Set<string>();
    while (worker.timeline.freeAtNs(nowNs) < nowNs + this.config.scheduleAheadNs) {
      const startNs = worker.timeline.freeAtNs(nowNs);
      const model = this.mostUrgentModel(worker, skipped);
      if (!model) return;
      const head = model.queue.peek()!;
      const choice = this.chooseBatch(worker, model, startNs, nowNs);
      if (!choice) {
        // The head cannot finish here. Drop it only if no other copy frees up earlier.
        if (this.otherCopyFreesEarlier(worker, model.spec.name, startNs, nowNs)) {
          skipped.add(model.spec.name);
        } else {
          this.host.dequeue(model, 1);
          result.outcomes.push(this.host.dropped(head, nowNs));
        }
        continue;
      }
      // Decided on the queue before this batch leaves it, as chooseBatch's timings were.
      const fused = this.estimates.runsFused(worker, model, choice.numRequests, choice.batchSize, nowNs);
      const requests = this.host.dequeue(model, choice.numRequests, choice.skip);
      // The start window stays open as long as every member can still finish in time: a worker
      // that runs late (the action ahead took its tail time) starts it late rather than refusing
      // a batch that would have made it. Never narrower than the fixed window, never wider than
      // `maxLatestDeltaNs`.
      let earliestDeadlineNs = Number.POSITIVE_INFINITY;
      for (const r of requests) earliestDeadlineNs = Math.min(earliestDeadlineNs, r.deadlineNs);
      const slackNs = earliestDeadlineNs - worker.timeline.startDelayNs - choice.boundNs - startNs;
      const latestDeltaNs = Math.max(this.config.latestDeltaNs, Math.min(this.config.maxLatestDeltaNs, slackNs));
      result.actions.push(
        this.host.planInfer(
          worker,
          model,
          { requests, batchSize: choice.batchSize, seqLength: choice.seqLength, durationNs: choice.durationNs, startNs, latestDeltaNs, fused },
          nowNs,
        ),
      );
    }
  }

  /** Among the worker's loaded models with demand: the head with the earliest latest-start time. */
  private mostUrgentModel(worker: WorkerState, skipped: ReadonlySet<string>): ModelState | undefined {
    let best: ModelState | undefined;
    let bestStartByNs = Number.POSITIVE_INFINITY;
    for (const instance of worker.instances.values()) {
      if (instance.state !== 'loaded' || skipped.has(instance.model)) continue;
      const model = this.host.model(instance.model);
      const head = model.queue.peek();
      if (!head) continue;
      const startByNs = head.deadlineNs - (this.estimator.estimateNs(instance.model, worker.id, profileKey(model.spec.batchSizes[0]!, head.seqLength)) ?? 0);
      if (startByNs < bestStartByNs) {
        bestStartByNs = startByNs;
        best = model;
      }
    }
    return best;
  }

  /** The next batch of `model` for `worker` to start at `startNs` (see batch-choice.ts). */
  private chooseBatch(worker: WorkerState, model: ModelState, startNs: number, nowNs: number): BatchChoice | undefined {
    return chooseBatch({
      queue: model.queue,
      batchSizes: this.estimates.usableBatchSizes(model),
      ...(model.spec.sequenceBuckets ? { sequenceBuckets: model.spec.sequenceBuckets } : {}),
      startNs,
      bufferNs: this.config.bufferNs,
      timing: (numRequests, batchSize, seqLength) => this.estimates.batchTiming(worker, model, numRequests, batchSize, seqLength, nowNs),
    });
  }

  /** True when another loaded copy of the model frees up before `startNs`. */
  private otherCopyFreesEarlier(worker: WorkerState, model: string, startNs: number, nowNs: number): boolean {
    for (const other of this.host.model(model).holders.values()) {
      if (other === worker || other.instances.get(model)?.state !== 'loaded') continue;
      if (other.timeline.freeAtNs(nowNs) < startNs) return true;
    }
    return false;
  }
}
