/**
 * Which batch a worker runs next for one model: a pure function of the model's deadline-ordered
 * queue, the batch sizes it may run, when the batch would start and how long batches take.
 *
 * 1. The largest batch, starting at the most urgent request, whose every member still finishes
 *    `bufferNs` before its deadline. Queues are deadline-ordered, so checking the head checks
 *    every member.
 * 2. Otherwise batch 1, if it still beats the head's deadline (without the buffer).
 * Nothing fits: `undefined`, and the head cannot finish on this worker.
 *
 * NOTE: the head is never passed over for a bigger batch of later requests, even under overload.
 * Admission (scheduler.ts) admits a request only when draining the queue this way finishes it in
 * time, so every queued request was promised its deadline; skipping an urgent head to serve a
 * full batch (as this module once did, for throughput in bursts) broke that promise: in a
 * simulated overload it turned ~15 % of the admitted requests into drops. On CPUs a smaller
 * batch costs little throughput (a row costs about the same at any batch size).
 */
import type { RequestQueue } from './request-queue.js';

export interface BatchTiming {
  /** The duration deadline checks rely on (high percentile; early exits at the planning quantile). */
  boundNs: number;
  /** The duration the worker's timeline is predicted with (median; expected exits). */
  expectedNs: number;
}

export interface BatchChoice {
  numRequests: number;
  batchSize: number;
  /** Padded sequence length of the batch (0 for fixed-shape models). */
  seqLength: number;
  durationNs: number;
  boundNs: number;
}

export interface BatchChoiceInput {
  queue: RequestQueue;
  /** The batch sizes the model may run, ascending (the largest caps a batch). */
  batchSizes: readonly number[];
  /** Text models: a batch is padded to its longest member's bucket, which its duration depends on. */
  sequenceBuckets?: readonly number[];
  startNs: number;
  bufferNs: number;
  /** Predicted duration of `numRequests` rows run at `batchSize` and `seqLength`, if known. */
  timing: (numRequests: number, batchSize: number, seqLength: number) => BatchTiming | undefined;
}

export function chooseBatch(input: BatchChoiceInput): BatchChoice | undefined {
  const { queue, batchSizes: usable, startNs, bufferNs, timing } = input;
  const head = queue.peek()!;
  const seqOf = (from: number, count: number) => (input.sequenceBuckets ? queue.maxSeqLength(from, count) : 0);
  const numWaiting = queue.length;
  // 1. the largest batch starting at the most urgent request whose members all finish in time
  for (let i = usable.length - 1; i >= 0; i--) {
    const numRequests = Math.min(numWaiting, usable[i]!);
    if (i > 0 && numRequests <= usable[i - 1]!) continue; // a smaller size already holds them
    const batchSize = usable.find((b) => b >= numRequests)!;
    const seqLength = seqOf(0, numRequests);
    const t = timing(numRequests, batchSize, seqLength);
    if (!t) continue;
    // NOTE: the deadline check uses the bound (exits at the planning quantile); the timeline gets the expected duration.
    if (startNs + t.boundNs <= head.deadlineNs - bufferNs) return { numRequests, batchSize, seqLength, durationNs: t.expectedNs, boundNs: t.boundNs };
  }
  // 2. batch 1, if it still beats the head's deadline
  const batch1 = timing(1, usable[0]!, head.seqLength ?? 0);
  if (batch1 !== undefined && startNs + batch1.boundNs <= head.deadlineNs) {
    return { numRequests: 1, batchSize: usable[0]!, seqLength: head.seqLength ?? 0, durationNs: batch1.expectedNs, boundNs: batch1.boundNs };
  }
  return undefined;
}
