import { describe, expect, it } from 'vitest';
import { chooseBatch, type BatchChoiceInput } from '../../controller/batch-choice.js';
import { RequestQueue } from '../../controller/request-queue.js';

const MS = 1_000_000;
/** 1 ms + 1 ms per row, bound = expected (no exits). */
const linear = (_n: number, batchSize: number) => ({ boundNs: (1 + batchSize) * MS, expectedNs: (1 + batchSize) * MS });

function queueOf(deadlinesMs: number[]): RequestQueue {
  const queue = new RequestQueue();
  deadlinesMs.forEach((d, i) => queue.insert({ id: i, model: 'm', arrivalNs: 0, deadlineNs: d * MS }));
  return queue;
}

function input(deadlinesMs: number[], overrides: Partial<BatchChoiceInput> = {}): BatchChoiceInput {
  return { queue: queueOf(deadlinesMs), batchSizes: [1, 2, 4, 8], startNs: 0, bufferNs: 2 * MS, timing: linear, ...overrides };
}

describe('chooseBatch', () => {
  it('takes the largest batch whose most urgent member still finishes a buffer before its deadline', () => {
    // batch 4 ends at 5 ms (needs a head deadline ≥ 7 ms), batch 8 at 9 ms (≥ 11 ms)
    expect(chooseBatch(input([10, 20, 20, 20, 20, 20]))).toMatchObject({ numRequests: 4, batchSize: 4, skip: 0, durationNs: 5 * MS });
    expect(chooseBatch(input([30, 30, 30, 30, 30, 30]))).toMatchObject({ numRequests: 6, batchSize: 8, skip: 0 });
  });

  it('runs exactly as many rows as requests when every size is allowed', () => {
    const choice = chooseBatch(input([30, 30, 30], { batchSizes: [1, 2, 3, 4, 5, 6, 7, 8] }));
    expect(choice).toMatchObject({ numRequests: 3, batchSize: 3 });
  });

  it('under overload skips heads that cannot make a full batch and serves the ones that can', () => {
    // nine waiting (more than the largest batch): batch 8 ends at 9 ms, so members need ≥ 11 ms
    const choice = chooseBatch(input([3, 12, 12, 12, 12, 12, 12, 12, 12]));
    expect(choice).toMatchObject({ numRequests: 8, batchSize: 8, skip: 1 });
  });

  it('passes over heads it could serve now only where a full batch serves far more rows per ms', () => {
    // three heads due at 9 ms and eight later requests: more than a full batch waiting
    const deadlines = [9, 9, 9, 40, 40, 40, 40, 40, 40, 40, 40];
    // where batching pays (5 ms + 1 ms a row): batch 8 serves 2.2x the rows per ms of the heads'
    // batch of 2, so the heads are passed over for a full batch of the later requests
    const pays = (_n: number, b: number) => ({ boundNs: (5 + b) * MS, expectedNs: (5 + b) * MS });
    expect(chooseBatch(input(deadlines, { timing: pays }))).toMatchObject({ numRequests: 8, batchSize: 8, skip: 3 });
    // where a row costs the same at every size (3 ms), a full batch gains nothing: the heads that
    // fit (two, by 6 ms) go first, and the later requests still get their turn
    const flat = (_n: number, b: number) => ({ boundNs: 3 * b * MS, expectedNs: 3 * b * MS });
    expect(chooseBatch(input(deadlines, { timing: flat }))).toMatchObject({ numRequests: 2, batchSize: 2, skip: 0 });
    // heads that cannot make even batch 1 with the buffer are still passed over (they are lost anyway)
    expect(chooseBatch(input([4, ...deadlines.slice(3), 40], { timing: flat }))).toMatchObject({ numRequests: 8, skip: 1 });
  });

  it('falls back to batch 1 without the buffer, and gives up when even that is too late', () => {
    expect(chooseBatch(input([2.5]))).toMatchObject({ numRequests: 1, batchSize: 1, skip: 0 });
    expect(chooseBatch(input([1.5]))).toBeUndefined();
    expect(chooseBatch(input([30], { startNs: 29 * MS }))).toBeUndefined();
  });

  it('waits for estimates: sizes without a timing are never chosen', () => {
    const onlySmall = (n: number, b: number) => (b <= 2 ? linear(n, b) : undefined);
    expect(chooseBatch(input([30, 30, 30, 30, 30], { timing: onlySmall }))).toMatchObject({ numRequests: 2, batchSize: 2 });
  });
});
