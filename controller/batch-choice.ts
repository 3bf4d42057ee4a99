/**
 * Which batch a worker runs next for one model: a pure function of the model's deadline-ordered
 * queue, the batch sizes it may run, when the batch would start and how long batches take.
 *
 * 1. Normally: the largest batch, starting at the most urgent request, whose every member still
 *    finishes `bufferNs` before its deadline. Queues are deadline-ordered, so checking the head
 *    checks every member.
 * 2. Overload (more than a full batch waiting): a bigger full batch of requests that can all still
 *    make it, skipping urgent heads that cannot make that batch, where batching pays: the full
 *    batch must serve at least `MIN_BATCHING_GAIN` times the rows per ms of the heads' own batch.
 *    The skipped heads are left for the caller to drop.
 * 3. Otherwise batch 1, if it still beats the head's deadline (without the buffer).
 * Nothing fits: `undefined`, and the head cannot finish on this worker.
 */
import type { RequestQueue } from './request-queue.js';

/**
 * How many times the rows per ms of the heads' own batch a full batch must serve before the
 * planner passes over admitted heads to run it (step 2).
 * NOTE: on a device where batching pays (5 ms + 1 ms a row) a batch of 16 serves 2.7x the rows per
 * ms of a batch of 2, and passing over heads kept goodput from collapsing at 3x overload. On a
 * CPU where a row costs the same at every batch size (fmnist-resnet on an AVX2 host: 2.8 ms a row
 * at 16, 3.0-3.5 at 2-6) it gained nothing and dropped admitted heads: under bursty arrivals
 * (bench:bursty) 74 of 76 requests dropped after admission had been passed over this way.
 */
const MIN_BATCHING_GAIN = 2;

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
  /** Requests skipped at the head of the queue (overload: too late for this batch). */
  skip: number;
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
  let chosen: BatchChoice | undefined;
  // 1. the largest batch starting at the most urgent request whose members all finish in time
  for (let i = usable.length - 1; i >= 0 && !chosen; i--) {
    const numRequests = Math.min(numWaiting, usable[i]!);
    if (i > 0 && numRequests <= usable[i - 1]!) continue; // a smaller size already holds them
    const batchSize = usable.find((b) => b >= numRequests)!;
    const seqLength = seqOf(0, numRequests);
    const t = timing(numRequests, batchSize, seqLength);
    if (!t) continue;
    // NOTE: the deadline check uses the bound (exits at the planning quantile); the timeline gets the expected duration.
    if (startNs + t.boundNs <= head.deadlineNs - bufferNs)
      chosen = { numRequests, batchSize, seqLength, durationNs: t.expectedNs, boundNs: t.boundNs, skip: 0 };
  }
  // 2. overload (more than a full batch waiting): a bigger full batch of requests that can all
  //    still make it serves more of them than a batch shrunk to fit the most urgent one (in a
  //    trace burst, urgent heads served one by one at batch 1 cap throughput just when it is
  //    needed most). Below that backlog the urgent head is served first, since the rest will
  //    get their turn anyway. Measured on the replay at x177: SLO 97.7-98.7 % with the bar at
  //    two full batches, 98.6-98.9 % at one; at half a batch it got worse (97.0-99.3 %).
  //    NOTE: admission (queue-drain.ts) admits only what a drain of full batches finishes in
  //    time, so this rarely passes over an admitted head while predictions hold. When a run
  //    overruns, it does: one head is dropped instead of every later batch shrinking to keep its
  //    promise. Without this step, at 3x overload on a device where batching pays (5 ms + 1 ms a
  //    row), the batches fell to 1-2 rows and goodput to 45 % of capacity.
  const overloaded = numWaiting > usable.at(-1)!;
  for (let i = usable.length - 1; i >= 0 && overloaded; i--) {
    const batchSize = usable[i]!;
    if (chosen && batchSize <= chosen.numRequests) break;
    // Text models: judged at the longest bucket, then timed at the batch's own.
    const longest = input.sequenceBuckets?.at(-1) ?? 0;
    const t = timing(batchSize, batchSize, longest);
    if (!t) continue;
    const skip = queue.firstWithDeadlineAtLeast(startNs + t.boundNs + bufferNs);
    if (skip > 0 && numWaiting - skip >= batchSize) {
      const seqLength = seqOf(skip, batchSize);
      const own = seqLength === longest ? t : (timing(batchSize, batchSize, seqLength) ?? t);
      // the heads can be served now: pass them over only for a batch that serves far more per ms
      if (chosen && own.expectedNs / batchSize > chosen.durationNs / chosen.numRequests / MIN_BATCHING_GAIN) continue;
      return { numRequests: batchSize, batchSize, seqLength, durationNs: own.expectedNs, boundNs: own.boundNs, skip };
    }
  }
  if (chosen) return chosen;
  // 3. batch 1, if it still beats the head's deadline
  const batch1 = timing(1, usable[0]!, head.seqLength ?? 0);
  if (batch1 !== undefined && startNs + batch1.boundNs <= head.deadlineNs) {
    return { numRequests: 1, batchSize: usable[0]!, seqLength: head.seqLength ?? 0, durationNs: batch1.expectedNs, boundNs: batch1.boundNs, skip: 0 };
  }
  return undefined;
}
