import { describe, expect, it } from 'vitest';
import { BatchEstimates } from '../../controller/batch-estimates.js';
import { newModelState, newWorkerState, type ModelState, type WorkerState } from '../../controller/cluster-state.js';
import { LatencyEstimator } from '../../controller/latency-estimator.js';
import { Placement, type PlacementActionBody, type PlacementActions } from '../../controller/placement.js';
import { schedulerConfig } from '../../controller/scheduler-config.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { MS, modelSpec } from '../support/fake-cluster.js';

function setUp(budgets: Record<string, number>) {
  const config = schedulerConfig();
  const workers = new Map<string, WorkerState>(Object.entries(budgets).map(([id, bytes]) => [id, newWorkerState(id, bytes, config.timeline)]));
  const estimator = new LatencyEstimator(config.estimator);
  const demand = new Set<string>();
  const placement = new Placement(workers, demand, new BatchEstimates(workers, estimator, config), estimator, config);
  const planned: { worker: string; body: PlacementActionBody }[] = [];
  const failed: { model: string; code: number }[] = [];
  const models = new Map<string, ModelState>();
  const actions: PlacementActions = {
    plan: (worker, body) => void planned.push({ worker: worker.id, body }),
    // as the scheduler's forgetInstance does
    forget: (worker, model) => {
      worker.usedBytes -= worker.instances.get(model)!.weightsBytes;
      worker.instances.delete(model);
      models.get(model)?.holders.delete(worker.id);
    },
    failQueued: (model, code) => void failed.push({ model: model.spec.name, code }),
  };
  const model = (name: string, weightsBytes = 100): ModelState => {
    const state = newModelState(modelSpec(name, { weightsBytes }));
    models.set(name, state);
    return state;
  };
  return { workers, demand, placement, planned, failed, actions, model };
}

/** The worker holds the model, loaded, last used at `lastUsedNs`. */
function holds(worker: WorkerState, model: ModelState, lastUsedNs = 0): void {
  worker.instances.set(model.spec.name, {
    model: model.spec.name,
    state: 'loaded',
    weightsBytes: model.spec.weightsBytes,
    lastUsedNs,
    readyRampSets: new Set(),
    pendingRampSets: new Set(),
    served: false,
  });
  worker.usedBytes += model.spec.weightsBytes;
  model.holders.set(worker.id, worker);
}

const queued = (model: ModelState, n: number) => {
  for (let i = 0; i < n; i++) model.queue.insert({ id: i + 1, model: model.spec.name, arrivalNs: 0, deadlineNs: 1_000 * MS });
};

describe('placement', () => {
  it('loads a first copy where it fits before evicting, and evicts the least recently used idle model when it must', () => {
    const { workers, placement, planned, actions, model } = setUp({ w0: 100, w1: 100 });
    const [old, recent, wanted] = [model('old', 60), model('recent', 40), model('wanted', 50)];
    holds(workers.get('w0')!, old, 1);
    holds(workers.get('w0')!, recent, 2);
    placement.placeDemanded(wanted, 0, actions);
    expect(planned).toEqual([{ worker: 'w1', body: { type: 'load', modelName: 'wanted', batchSizes: [1, 2, 4, 8, 16] } }]);
    // w1 is full now too: the next model evicts on the worker whose idle models free enough, oldest first
    const other = model('other', 55);
    planned.length = 0;
    placement.placeDemanded(other, 0, actions);
    expect(planned.map((p) => `${p.worker} ${p.body.type} ${p.body.modelName}`)).toEqual(['w0 unload old', 'w0 load other']);
    expect(workers.get('w0')!.instances.has('recent')).toBe(true);
  });

  it('never evicts a model with queued requests', () => {
    const { workers, demand, placement, planned, actions, model } = setUp({ w0: 100 });
    const busy = model('busy', 80);
    holds(workers.get('w0')!, busy);
    demand.add('busy');
    placement.placeDemanded(model('new', 50), 0, actions);
    expect(planned).toEqual([]);
  });

  it('answers the queue with MODEL_UNAVAILABLE once every worker failed to load the model', () => {
    const { workers, placement, planned, failed, actions, model } = setUp({ w0: 100, w1: 100 });
    const broken = model('broken');
    queued(broken, 3);
    workers.get('w0')!.failedModels.add('broken');
    placement.placeDemanded(broken, 0, actions);
    expect(failed).toEqual([]); // w1 could still try: it gets the LOAD instead
    expect(planned.map((p) => p.worker)).toEqual(['w1']);
    // w1's LOAD failed too (the scheduler forgets the copy and marks the worker)
    actions.forget(workers.get('w1')!, 'broken');
    workers.get('w1')!.failedModels.add('broken');
    placement.placeDemanded(broken, 0, actions);
    expect(failed).toEqual([{ model: 'broken', code: ErrorCode.MODEL_UNAVAILABLE }]);
  });

  it('loads a pinned model on every worker with free memory for it', () => {
    const { placement, planned, actions, model } = setUp({ w0: 100, w1: 100, small: 10 });
    placement.placePinned(model('pinned', 50), 0, actions);
    expect(planned.map((p) => p.worker).sort()).toEqual(['w0', 'w1']);
  });

  it('takes a model out of service once its queue is served, skipping copies still in use', () => {
    const { workers, placement, planned, actions, model } = setUp({ w0: 100, w1: 100 });
    const retiring = model('retiring');
    holds(workers.get('w0')!, retiring);
    holds(workers.get('w1')!, retiring);
    queued(retiring, 1);
    expect(placement.unloadEverywhere(retiring, actions)).toBe(false);
    expect(planned).toEqual([]);
    retiring.queue.shift();
    workers.get('w1')!.inflight.set(7, { action: { type: 'infer', modelName: 'retiring' } as never, workerId: 'w1', requests: [] });
    expect(placement.unloadEverywhere(retiring, actions)).toBe(false); // w1 still runs it
    expect(planned).toEqual([{ worker: 'w0', body: { type: 'unload', modelName: 'retiring' } }]);
    workers.get('w1')!.inflight.clear();
    expect(placement.unloadEverywhere(retiring, actions)).toBe(true);
    expect(planned.map((p) => p.worker)).toEqual(['w0', 'w1']);
  });
});
