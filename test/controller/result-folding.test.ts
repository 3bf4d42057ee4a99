import { describe, expect, it } from 'vitest';
import { Admission } from '../../controller/admission.js';
import { BatchEstimates } from '../../controller/batch-estimates.js';
import { newModelState, newWorkerState, type ModelState, type WorkerState } from '../../controller/cluster-state.js';
import { LatencyEstimator } from '../../controller/latency-estimator.js';
import { Placement } from '../../controller/placement.js';
import { profileKey } from '../../controller/profile-key.js';
import type { QueuedRequest } from '../../controller/request-queue.js';
import { ResultFolding } from '../../controller/result-folding.js';
import type { RequestOutcome } from '../../controller/core-outputs.js';
import { schedulerConfig } from '../../controller/scheduler-config.js';
import { ErrorCode } from '../../shared/error-codes.js';
import type { ActionResultMsg, InferAction, LoadAction } from '../../shared/protocol.js';
import { MS, modelSpec } from '../support/fake-cluster.js';
import { loadedInstance } from '../support/model-instance.js';

function setUp() {
  const config = schedulerConfig();
  const workers = new Map<string, WorkerState>([['w0', newWorkerState('w0', 1_000, config.timeline)]]);
  const models = new Map<string, ModelState>([['a', newModelState(modelSpec('a', { weightsBytes: 100 }))]]);
  const estimator = new LatencyEstimator(config.estimator);
  const estimates = new BatchEstimates(workers, estimator, config);
  const requeued: QueuedRequest[] = [];
  const folding = new ResultFolding({
    workers,
    models,
    estimator,
    admission: new Admission(estimates, config),
    placement: new Placement(workers, new Set(), estimates, estimator, config),
    enqueue: (_model, request) => void requeued.push(request),
    fail: (request, status, code, message, nowNs, workerId): RequestOutcome => ({
      requestId: request.id,
      status,
      code,
      message,
      completeNs: nowNs,
      ...(workerId ? { workerId } : {}),
    }),
  });
  const worker = workers.get('w0')!;
  worker.instances.set('a', loadedInstance('a'));
  worker.usedBytes = 100;
  models.get('a')!.holders.set('w0', worker);
  return { folding, worker, models, estimator, requeued };
}

const window = (actionId: number) => ({ actionId, earliestNs: 0, latestNs: 5 * MS, expectedDurationNs: 2 * MS, expectedStartNs: 0 });

/** An INFER of `n` requests in flight on the worker, deadlines at 10 ms. */
function inflightInfer(worker: WorkerState, actionId: number, n: number): QueuedRequest[] {
  const requests = Array.from({ length: n }, (_, i) => ({ id: actionId * 100 + i, model: 'a', arrivalNs: 0, deadlineNs: 10 * MS }));
  const action: InferAction = { type: 'infer', ...window(actionId), modelName: 'a', batchSize: n, numRequests: n, inputs: [] };
  worker.timeline.add(actionId, action.expectedDurationNs, 0);
  worker.inflight.set(actionId, { action, workerId: worker.id, requests });
  return requests;
}

const result = (actionId: number, actionType: ActionResultMsg['actionType'], code: number, extra: Partial<ActionResultMsg> = {}): ActionResultMsg => ({
  type: 'result',
  actionId,
  actionType,
  modelName: 'a',
  code,
  timing: { receivedNs: 0, startNs: 1 * MS, endNs: 3 * MS, durationNs: 2 * MS, sentNs: 3 * MS },
  ...extra,
});

describe('folding results back into the planner (result-folding.ts)', () => {
  it('answers each request of a finished INFER once, by its deadline, and learns the run', () => {
    const { folding, worker, estimator } = setUp();
    inflightInfer(worker, 1, 2);
    const fold = folding.onResult('w0', result(1, 'infer', ErrorCode.OK, { outputs: [{ name: 'y', dtype: 'float32', shape: [2, 10] }] }), 4 * MS);
    expect(fold.outcomes.map((o) => [o.status, o.batchIndex])).toEqual([
      ['OK', 0],
      ['OK', 1],
    ]);
    expect(fold.record).toMatchObject({ actionId: 1, actualDurationNs: 2 * MS, expectedDurationNs: 2 * MS });
    expect(worker.inflight.size).toBe(0);
    expect(estimator.expectedNs('a', 'w0', profileKey(2, undefined))).toBe(2 * MS);
    // a late answer is DEADLINE_MISSED, and a result for an action no longer in flight is dropped
    inflightInfer(worker, 2, 1);
    expect(folding.onResult('w0', result(2, 'infer', ErrorCode.OK), 12 * MS).outcomes[0]).toMatchObject({
      status: 'DEADLINE_MISSED',
      code: ErrorCode.DEADLINE_MISSED,
    });
    expect(folding.onResult('w0', result(2, 'infer', ErrorCode.OK), 13 * MS).outcomes).toEqual([]);
  });

  it('does not answer again the rows a ramp already answered', () => {
    const { folding, worker } = setUp();
    const requests = inflightInfer(worker, 1, 3);
    const early = folding.onExit(
      'w0',
      { type: 'exit', actionId: 1, modelName: 'a', siteId: 4, rows: [1], confidences: [0.99], predictions: [7], atNs: 2 * MS, outputs: [] },
      2 * MS,
    );
    expect(early).toMatchObject([{ requestId: requests[1]!.id, status: 'OK', early: true, exitRamp: 4, prediction: 7 }]);
    const fold = folding.onResult('w0', result(1, 'infer', ErrorCode.OK), 4 * MS);
    expect(fold.outcomes.map((o) => o.requestId)).toEqual([requests[0]!.id, requests[2]!.id]);
  });

  it('plans a batch again when the worker could not start it, forgetting the model if it was not loaded', () => {
    const { folding, worker, models, requeued } = setUp();
    const late = inflightInfer(worker, 1, 2);
    expect(folding.onResult('w0', result(1, 'infer', ErrorCode.INFER_TOO_LATE), 4 * MS).outcomes).toEqual([]);
    expect(requeued).toEqual(late);
    expect(worker.instances.has('a')).toBe(true);
    inflightInfer(worker, 2, 1);
    folding.onResult('w0', result(2, 'infer', ErrorCode.INFER_NOT_LOADED), 5 * MS);
    expect(worker.instances.has('a')).toBe(false);
    expect(models.get('a')!.holders.has('w0')).toBe(false);
    expect(worker.usedBytes).toBe(0);
  });

  it('adopts a LOAD it had given up on when the worker reports it done, and never retries a broken model there', () => {
    const { folding, worker, models } = setUp();
    folding.forgetInstance(worker, 'a');
    const load: LoadAction = { type: 'load', ...window(7), modelName: 'a', batchSizes: [1] };
    worker.abandonedLoads.set(7, load);
    folding.onResult(
      'w0',
      result(7, 'load', ErrorCode.OK, { profile: [{ batchSize: 1, durationNs: 1 * MS, p99DurationNs: 2 * MS }], weightsBytes: 120 }),
      4 * MS,
    );
    expect(worker.instances.get('a')).toMatchObject({ state: 'loaded', weightsBytes: 120 });
    expect(worker.usedBytes).toBe(120);
    expect(models.get('a')!.holders.has('w0')).toBe(true);
    // a LOAD that fails for good marks the model as never to be placed on this worker
    folding.forgetInstance(worker, 'a');
    worker.instances.set('a', loadedInstance('a', { state: 'loading' }));
    worker.timeline.add(8, 2 * MS, 0);
    worker.inflight.set(8, { action: { ...load, ...window(8) }, workerId: 'w0', requests: [] });
    folding.onResult('w0', result(8, 'load', ErrorCode.LOAD_FAILED), 5 * MS);
    expect(worker.failedModels.has('a')).toBe(true);
    expect(worker.instances.has('a')).toBe(false);
  });

  it('refuses a result that cannot belong to the action it names', () => {
    const { folding, worker } = setUp();
    inflightInfer(worker, 1, 2);
    expect(folding.resultMismatch('w0', { ...result(1, 'load', ErrorCode.OK) })).toMatch(/names infer a's action 1/);
    expect(folding.resultMismatch('w0', result(1, 'infer', ErrorCode.OK, { outputs: [{ name: 'y', dtype: 'float32', shape: [3, 10] }] }))).toMatch(
      /without 2 rows/,
    );
    expect(
      folding.resultMismatch('w0', result(1, 'infer', ErrorCode.OK, { outputRows: [0, 5], outputs: [{ name: 'y', dtype: 'float32', shape: [2, 10] }] })),
    ).toMatch(/beyond its 2 requests/);
    expect(folding.resultMismatch('w0', result(1, 'infer', ErrorCode.OK, { outputs: [{ name: 'y', dtype: 'float32', shape: [2, 10] }] }))).toBeUndefined();
  });
});
