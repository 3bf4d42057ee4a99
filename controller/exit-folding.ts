/**
 * What a finished early-exit INFER teaches its model's timeline (exit-timeline.ts): its exits
 * (from the feedback, by the thresholds it ran with) for the exit evidence, its segments' stage
 * timings for the learned segment lines, and its duration factor against the whole model, by
 * which the latency estimator divides to learn whole-model durations:
 * - compact chain: from the rows each segment actually ran;
 * - release chain: measured against the whole model's expected duration (`wholeNs`) and learned
 *   (`observeReleaseChain`), so what the chain costs in serving stays with the chain;
 * - fused run (release off the chain): the heads' cost only; it has no segments.
 * Pure: no state of its own besides the timeline it folds into.
 */
import type { ActionResultMsg, EarlyExitPlan, InferAction } from '../shared/protocol.js';
import type { BatchExits } from './exit-evidence.js';
import { segmentOfStage, type ExitTimeline, type SegmentRun } from './exit-timeline.js';

/**
 * What a finished INFER's feedback says about its exits: per active ramp, request rows that reached
 * it unanswered and rows answered there (a row is answered at the first ramp whose confidence
 * reaches its threshold).
 */
export function exitsOf(plan: EarlyExitPlan, feedback: ActionResultMsg['feedback'], numRequests: number): BatchExits | undefined {
  if (!feedback) return undefined;
  const columns = plan.ramps.map((r) => feedback.siteIds.indexOf(r.siteId));
  if (columns.some((c) => c < 0)) return undefined;
  const reached = plan.ramps.map(() => 0);
  const answered = plan.ramps.map(() => 0);
  for (let row = 0; row < numRequests; row++) {
    for (let i = 0; i < plan.ramps.length; i++) {
      reached[i]!++;
      if ((feedback.confidences[columns[i]!]?.[row] ?? -1) >= plan.ramps[i]!.threshold) {
        answered[i]!++;
        break;
      }
    }
  }
  return { reached, answered };
}

/** Rows each segment of a compact chain ran, from which rows were answered and which were kept. */
export function compactRowsOf(plan: EarlyExitPlan, exits: BatchExits, numRequests: number): number[] {
  const kept = plan.keepRows.filter((r) => r < numRequests).length;
  const rows = [numRequests];
  let left = 0;
  exits.answered.forEach((n) => {
    left += n;
    // NOTE: monitored rows run on whether or not they were answered; an upper estimate of the rest.
    rows.push(Math.max(0, numRequests - left) + Math.min(kept, left));
  });
  return rows;
}

/** Folds a finished INFER into `timeline`; returns its duration factor against the whole model (1 without ramps). */
export function foldExitRun(timeline: ExitTimeline, action: InferAction, msg: ActionResultMsg, wholeNs: number | undefined, nowNs: number): number {
  const plan = action.earlyExit;
  if (!plan || plan.ramps.length === 0) return 1;
  const siteIds = plan.ramps.map((r) => r.siteId);
  const exits = exitsOf(plan, msg.feedback, action.numRequests);
  const runs: SegmentRun[] = [];
  for (const stage of msg.stages ?? []) {
    const segment = segmentOfStage(stage.name, siteIds);
    if (segment !== undefined) runs.push({ segment, rows: stage.numRows ?? action.batchSize, durationNs: stage.durationNs });
  }
  // A fused run (release) teaches the exit evidence only: it has no segments.
  if (plan.fused) {
    timeline.observe(siteIds, exits, [], nowNs);
    return timeline.fusedFactor(siteIds, action.batchSize);
  }
  timeline.observe(siteIds, exits, runs, nowNs);
  if (plan.mode === 'release') {
    if (wholeNs !== undefined && wholeNs > 0) timeline.observeReleaseChain(siteIds, action.batchSize, msg.timing.durationNs / wholeNs);
    return timeline.releaseChainFactor(siteIds, action.batchSize);
  }
  // Rows per segment (compact): as the worker reports them, else from the exits.
  const rows = new Array<number>(siteIds.length + 1).fill(action.numRequests);
  if (exits) compactRowsOf(plan, exits, action.numRequests).forEach((n, s) => (rows[s] = n));
  for (const run of runs) if (run.rows > 0) rows[run.segment] = run.rows;
  return timeline.factorOf(siteIds, rows, action.batchSize);
}
