/**
 * The baseline users would pick instead of the planner (TF-Serving / Triton dynamic batching):
 * requests in arrival order; a batch leaves when it is full or its oldest request has waited
 * `batchTimeoutNs`, and only when its worker is (nearly) idle; no deadline admission; a bounded
 * queue per model (`maxEnqueuedBatches` full batches, TF-Serving's `max_enqueued_batches`). A
 * request still gets its answer when its deadline passes in the queue.
 */
import { ErrorCode } from '../shared/error-codes.js';
import type { BatchEstimates } from './batch-estimates.js';
import type { ModelState, WorkerState } from './cluster-state.js';
import type { DispatchHost, DispatchPolicy } from './dispatch-policy.js';
import type { QueuedRequest } from './request-queue.js';
import type { PlanResult } from './core-outputs.js';
import type { SchedulerConfig } from './scheduler-config.js';

export class FifoDispatch implements DispatchPolicy {
  constructor(
    private readonly host: DispatchHost,
    private readonly estimates: BatchEstimates,
    /** The scheduler's config (changed in place by setPolicy). */
    private readonly config: SchedulerConfig,
  ) {}

  refusal(model: ModelState): { code: number; message: string } | undefined {
    const bound = this.config.maxEnqueuedBatches * this.estimates.largestBatch(model);
    if (bound > 0 && model.queue.length >= bound) {
      return {
        code: ErrorCode.QUEUE_FULL,
        message: `${model.queue.length} requests of '${model.spec.name}' queued (fifo bound: ${this.config.maxEnqueuedBatches} batches)`,
      };
    }
    return undefined;
  }

  beginPlan(): void {}

  /** Plans nothing against deadlines, but answers a request whose deadline passed while it waited (it used to wait forever once no worker took it). */
  expire(model: ModelState, nowNs: number, result: PlanResult): void {
    while (model.queue.length > 0 && model.queue.peek()!.deadlineNs <= nowNs) {
      result.outcomes.push(
        this.host.fail(
          this.host.dequeue(model, 1)[0]!,
          'DEADLINE_MISSED',
          ErrorCode.DROPPED_BEFORE_EXECUTION,
          'its deadline passed while it waited in the queue',
          nowNs,
        ),
      );
    }
  }

  /**
   * Only an idle worker (nothing planned that ends after an action planned now could start).
   * NOTE: against the worker's own start delay, not the configured one: with the configured one,
   * a worker whose learned delay was above it was never idle, and served nothing.
   */
  takesWork(worker: WorkerState, nowNs: number): boolean {
    return worker.timeline.freeAtNs(nowNs) <= nowNs + worker.timeline.startDelayNs;
  }

  /** When the worker is (nearly) idle: the oldest requests of a model whose batch is full or whose oldest request has waited the batch timeout. */
  fill(worker: WorkerState, nowNs: number, result: PlanResult): void {
    while (this.takesWork(worker, nowNs)) {
      let chosen: ModelState | undefined;
      for (const instance of worker.instances.values()) {
        if (instance.state !== 'loaded') continue;
        const model = this.host.model(instance.model);
        const head = model.queue.peek();
        if (!head) continue;
        const ready = model.queue.length >= this.estimates.largestBatch(model) || nowNs - head.arrivalNs >= this.config.batchTimeoutNs;
        if (ready && (!chosen || head.arrivalNs < chosen.queue.peek()!.arrivalNs)) chosen = model;
      }
      if (!chosen) return;
      const numRequests = Math.min(chosen.queue.length, this.estimates.largestBatch(chosen));
      const batchSize = chosen.spec.batchSizes.find((b) => b >= numRequests)!;
      const seqLength = chosen.spec.sequenceBuckets ? chosen.queue.maxSeqLength(0, numRequests) : 0;
      const timing = this.estimates.batchTiming(worker, chosen, numRequests, batchSize, seqLength, nowNs);
      if (!timing) return;
      const startNs = worker.timeline.freeAtNs(nowNs);
      const fused = this.estimates.runsFused(worker, chosen, numRequests, batchSize, nowNs);
      result.actions.push(
        this.host.planInfer(
          worker,
          chosen,
          { requests: this.host.dequeue(chosen, numRequests), batchSize, seqLength, durationNs: timing.expectedNs, startNs, fused },
          nowNs,
        ),
      );
    }
  }

  wakeAtNs(_model: ModelState, head: QueuedRequest): number {
    return Math.min(head.arrivalNs + this.config.batchTimeoutNs, head.deadlineNs);
  }
}
