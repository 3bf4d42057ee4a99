import { describe, expect, it } from 'vitest';
import { BatchEstimates } from '../../controller/batch-estimates.js';
import { newModelState, newWorkerState, type WorkerState } from '../../controller/cluster-state.js';
import { LatencyEstimator } from '../../controller/latency-estimator.js';
import { schedulerConfig } from '../../controller/scheduler-config.js';
import { MS, modelSpec } from '../support/fake-cluster.js';
import { loadedInstance } from '../support/model-instance.js';

function setUp(maxBatchSize = 16) {
  const config = schedulerConfig({ maxBatchSize });
  const workers = new Map<string, WorkerState>();
  const estimator = new LatencyEstimator(config.estimator);
  const estimates = new BatchEstimates(workers, estimator, config);
  const model = newModelState(modelSpec('a'));
  const worker = newWorkerState('w0', 10_000, config.timeline);
  workers.set('w0', worker);
  return { config, estimator, estimates, model, worker };
}

/** The worker holds the model, loaded. */
function load(worker: WorkerState, model: ReturnType<typeof newModelState>) {
  worker.instances.set('a', loadedInstance('a'));
  model.holders.set(worker.id, worker);
}

describe('batch estimates', () => {
  it('caps batch sizes at the configured largest, and follows a change of it', () => {
    const { config, estimates, model } = setUp(8);
    expect(estimates.usableBatchSizes(model)).toEqual([1, 2, 4, 8]);
    expect(estimates.largestBatch(model)).toBe(8);
    config.maxBatchSize = 0; // below every size: the smallest still runs
    expect(estimates.usableBatchSizes(model)).toEqual([1]);
  });

  it('times a batch from the estimator: a high percentile as the bound, the median as the typical duration', () => {
    const { estimator, estimates, model, worker } = setUp();
    expect(estimates.batchTiming(worker, model, 4, 4, 0, 0)).toBeUndefined();
    for (let i = 0; i < 40; i++) estimator.record('a', 'w0', 4, (i % 10 === 9 ? 9 : 3) * MS);
    const timing = estimates.batchTiming(worker, model, 4, 4, 0, 0)!;
    expect(timing.expectedNs).toBe(3 * MS);
    expect(timing.boundNs).toBe(9 * MS);
  });

  it('predicts a lone request on an idle holder at its batch-1 bound, and adds a LOAD where the model is missing', () => {
    const { config, estimator, estimates, model, worker } = setUp();
    for (let i = 0; i < 20; i++) estimator.record('a', 'w0', 1, 2 * MS);
    estimator.record('a', 'w0', 0, 500 * MS); // a LOAD
    const nowNs = 1_000 * MS;
    const idleAtNs = nowNs + config.timeline.futureNs; // an idle worker's timeline: the hop to it
    expect(estimates.earliestCompletionNs(model, nowNs, 0)).toBe(idleAtNs + 500 * MS + 2 * MS); // no holder: load first
    load(worker, model);
    expect(estimates.earliestCompletionNs(model, nowNs, 0)).toBe(idleAtNs + 2 * MS);
    expect(estimates.batch1EstimateNs(model)).toBe(2 * MS);
  });
});
