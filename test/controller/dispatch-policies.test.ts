import { describe, expect, it } from 'vitest';
import { Admission } from '../../controller/admission.js';
import { BatchEstimates } from '../../controller/batch-estimates.js';
import { newModelState, newWorkerState, type ModelState, type WorkerState } from '../../controller/cluster-state.js';
import { DeadlineDispatch } from '../../controller/deadline-dispatch.js';
import type { DispatchHost } from '../../controller/dispatch-policy.js';
import { FifoDispatch } from '../../controller/fifo-dispatch.js';
import { LatencyEstimator } from '../../controller/latency-estimator.js';
import type { RequestOutcome } from '../../controller/core-outputs.js';
import { schedulerConfig } from '../../controller/scheduler-config.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { MS, modelSpec } from '../support/fake-cluster.js';
import { loadedInstance } from '../support/model-instance.js';

/** One model on one idle worker that runs batch 1 in 2 ms, and a host that records what the policy does. */
function setUp(overrides: Parameters<typeof schedulerConfig>[0] = {}) {
  const config = schedulerConfig({ maxBatchSize: 4, ...overrides });
  const workers = new Map<string, WorkerState>([['w0', newWorkerState('w0', 1_000, config.timeline)]]);
  const estimator = new LatencyEstimator(config.estimator);
  for (const b of [1, 2, 4]) for (let i = 0; i < 20; i++) estimator.record('a', 'w0', b, 2 * b * MS);
  const estimates = new BatchEstimates(workers, estimator, config);
  const model: ModelState = newModelState(modelSpec('a', { batchSizes: [1, 2, 4] }));
  const worker = workers.get('w0')!;
  worker.instances.set('a', loadedInstance('a'));
  model.holders.set('w0', worker);
  const planned: { numRequests: number; batchSize: number }[] = [];
  const host: DispatchHost = {
    model: () => model,
    dequeue: (m, count, from = 0) => m.queue.take(count, from),
    planInfer: (w, _m, { requests, batchSize, durationNs }, nowNs) => {
      planned.push({ numRequests: requests.length, batchSize });
      w.timeline.add(planned.length, durationNs, nowNs);
      return { workerId: w.id, action: {} as never, requests };
    },
    dropped: (r, nowNs) => ({ requestId: r.id, status: 'DEADLINE_MISSED', code: ErrorCode.DROPPED_BEFORE_EXECUTION, completeNs: nowNs }),
    fail: (r, status, code, message, nowNs): RequestOutcome => ({ requestId: r.id, status, code, message, completeNs: nowNs }),
  };
  const queue = (count: number, deadlineNs: number, arrivalNs = 0) => {
    for (let i = 0; i < count; i++) model.queue.insert({ id: model.queue.length + 1, model: 'a', arrivalNs, deadlineNs });
  };
  return { config, workers, estimator, estimates, model, worker, host, planned, queue };
}

describe('fifo dispatch (the baseline)', () => {
  it('bounds the queue at maxEnqueuedBatches full batches', () => {
    const { config, estimates, model, host, queue } = setUp({ policy: 'fifo', maxEnqueuedBatches: 2 });
    const fifo = new FifoDispatch(host, estimates, config);
    queue(7, 1e12);
    expect(fifo.refusal(model)).toBeUndefined();
    queue(1, 1e12);
    expect(fifo.refusal(model)?.code).toBe(ErrorCode.QUEUE_FULL);
  });

  it('sends a batch only when it is full or its oldest request waited the batch timeout, and answers what expired in the queue', () => {
    const { config, estimates, model, worker, host, planned, queue } = setUp({ policy: 'fifo', batchTimeoutNs: 5 * MS });
    const fifo = new FifoDispatch(host, estimates, config);
    queue(2, 1e12, 0);
    fifo.fill(worker, 1 * MS, { actions: [], outcomes: [] });
    expect(planned).toEqual([]); // neither full nor old
    expect(fifo.wakeAtNs(model, model.queue.peek()!)).toBe(5 * MS);
    fifo.fill(worker, 5 * MS, { actions: [], outcomes: [] });
    expect(planned).toEqual([{ numRequests: 2, batchSize: 2 }]);
    queue(1, 8 * MS, 6 * MS);
    const result = { actions: [], outcomes: [] as RequestOutcome[] };
    fifo.expire(model, 9 * MS, result);
    expect(result.outcomes.map((o) => o.status)).toEqual(['DEADLINE_MISSED']);
  });
});

describe('deadline dispatch (the planner)', () => {
  it('refuses at arrival what the planned drain cannot finish in time, with CANNOT_MEET_DEADLINE', () => {
    const { config, workers, estimator, estimates, model, host } = setUp();
    const planner = new DeadlineDispatch(host, workers, estimator, estimates, new Admission(estimates, config), config);
    expect(planner.refusal(model, { id: 1, model: 'a', arrivalNs: 0, deadlineNs: 1 * MS }, 0)?.code).toBe(ErrorCode.CANNOT_MEET_DEADLINE);
    expect(planner.refusal(model, { id: 2, model: 'a', arrivalNs: 0, deadlineNs: 100 * MS }, 0)).toBeUndefined();
  });

  it('fills the worker with the largest batch that meets every deadline, and drops a head no worker can start in time', () => {
    const { config, workers, estimator, estimates, model, worker, host, planned, queue } = setUp();
    const planner = new DeadlineDispatch(host, workers, estimator, estimates, new Admission(estimates, config), config);
    queue(3, 100 * MS);
    planner.beginPlan(0);
    planner.fill(worker, 0, { actions: [], outcomes: [] });
    expect(planned).toEqual([{ numRequests: 3, batchSize: 4 }]);
    queue(1, 1 * MS); // 2 ms of batch 1 after a busy worker: hopeless
    const result = { actions: [], outcomes: [] as RequestOutcome[] };
    planner.beginPlan(0);
    planner.expire(model, 0, result);
    expect(result.outcomes.map((o) => o.code)).toEqual([ErrorCode.DROPPED_BEFORE_EXECUTION]);
    expect(planner.wakeAtNs(model, { id: 9, model: 'a', arrivalNs: 0, deadlineNs: 50 * MS })).toBeLessThan(50 * MS);
  });
});
