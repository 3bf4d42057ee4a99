/**
 * Deadline admission: a request is admitted only when draining its model's queue as the planner
 * will (batch-estimates.ts, queue-drain.ts) finishes it in time, plus the margin admission has
 * learned from its own errors (admission-margin.ts, opt-in). Admitted requests carry the
 * prediction, and their outcomes are folded back into the margin.
 */
import { AdmissionMargin } from './admission-margin.js';
import type { BatchEstimates } from './batch-estimates.js';
import type { ModelState } from './cluster-state.js';
import type { QueuedRequest } from './request-queue.js';
import type { SchedulerConfig } from './scheduler-config.js';

export class Admission {
  private readonly margin: AdmissionMargin;

  constructor(
    private readonly estimates: BatchEstimates,
    /** The scheduler's config (changed in place). */
    private readonly config: SchedulerConfig,
  ) {
    this.margin = new AdmissionMargin(config.admissionMargin);
  }

  /**
   * Admits `request` (recording its prediction on it) or says why not. NOTE: admission applies the
   * planner's own rule, so what is admitted can be planned in time: a batch must end `bufferNs`
   * before its head's deadline, except a lone head run at batch 1. Every arrival counts, admitted
   * or not: under overload the batch behind a request fills up with whatever arrives, and counting
   * only the admitted ones let a burst's first requests be admitted on the promise of small
   * batches, after which the planner shrank every batch to keep them (on a device where batching
   * pays, a cascade of batch-1 runs).
   */
  admit(model: ModelState, request: QueuedRequest, nowNs: number): { refusal?: string } {
    model.arrivals.record(nowNs);
    const numAhead = model.queue.countAhead(request.deadlineNs);
    const fullBatchesAhead = Math.floor(numAhead / this.estimates.largestBatch(model));
    const marginNs = this.margin.marginNs(fullBatchesAhead);
    const latestFinishNs = request.deadlineNs - (numAhead === 0 ? 0 : this.config.bufferNs) - marginNs;
    const finishNs = this.estimates.earliestCompletionNs(model, nowNs, numAhead, request.seqLength ?? 0, latestFinishNs);
    if (finishNs > latestFinishNs) {
      const slackMs = ((request.deadlineNs - nowNs) / 1e6).toFixed(2);
      const needMs = ((finishNs - nowNs) / 1e6).toFixed(2);
      const margin = marginNs > 0 ? ` (+ ${(marginNs / 1e6).toFixed(2)} ms learned margin)` : '';
      return { refusal: `earliest predicted completion is ${needMs} ms away${margin}, deadline in ${slackMs} ms` };
    }
    request.admission = { predictedCompleteNs: finishNs, fullBatchesAhead, rowsAhead: numAhead, settled: false };
    return {};
  }

  /** Folds an admitted request's completion (or, dropped, a lower bound of it) into the margin, once. */
  settle(request: QueuedRequest, completeNs: number): void {
    const admission = request.admission;
    if (!admission || admission.settled) return;
    admission.settled = true;
    this.margin.observe(admission.fullBatchesAhead, completeNs - admission.predictedCompleteNs);
  }
}
