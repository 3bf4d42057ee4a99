import { describe, expect, it } from 'vitest';
import { Admission } from '../../controller/admission.js';
import { BatchEstimates } from '../../controller/batch-estimates.js';
import { newModelState, newWorkerState, type WorkerState } from '../../controller/cluster-state.js';
import { LatencyEstimator } from '../../controller/latency-estimator.js';
import type { QueuedRequest } from '../../controller/request-queue.js';
import { schedulerConfig } from '../../controller/scheduler-config.js';
import { MS, modelSpec } from '../support/fake-cluster.js';
import { loadedInstance } from '../support/model-instance.js';

/** One idle worker holding model 'a', whose every batch size runs 2 ms; admission with a margin. */
function setUp() {
  const config = schedulerConfig({ admissionMargin: { quantile: 0.9, windowSize: 100, minSamples: 10 } });
  const workers = new Map<string, WorkerState>();
  const estimator = new LatencyEstimator(config.estimator);
  const model = newModelState(modelSpec('a'));
  const worker = newWorkerState('w0', 10_000, config.timeline);
  worker.instances.set('a', loadedInstance('a'));
  workers.set('w0', worker);
  model.holders.set('w0', worker);
  for (const b of [1, 2, 4, 8, 16]) for (let i = 0; i < 20; i++) estimator.record('a', 'w0', b, 2 * MS);
  return { admission: new Admission(new BatchEstimates(workers, estimator, config), config), model, config };
}

const request = (id: number, nowNs: number, sloMs: number): QueuedRequest => ({ id, model: 'a', arrivalNs: nowNs, deadlineNs: nowNs + sloMs * MS });

describe('deadline admission', () => {
  it('admits what the drain finishes in time, recording the prediction, and refuses the rest saying why', () => {
    const { admission, model, config } = setUp();
    const nowNs = 1_000 * MS;
    const ok = request(1, nowNs, 10);
    expect(admission.admit(model, ok, nowNs)).toEqual({});
    expect(ok.admission).toEqual({ predictedCompleteNs: nowNs + config.timeline.futureNs + 2 * MS, fullBatchesAhead: 0, rowsAhead: 0, settled: false });
    const tight = request(2, nowNs, 1);
    expect(admission.admit(model, tight, nowNs).refusal).toMatch(/^earliest predicted completion is 2\.50 ms away, deadline in 1\.00 ms$/);
    expect(tight.admission).toBeUndefined();
  });

  it('records how many queued requests were ahead of an admitted one (requests.csv rows_ahead)', () => {
    const { admission, model } = setUp();
    const nowNs = 1_000 * MS;
    for (let i = 0; i < 3; i++) model.queue.insert(request(i, nowNs, 20 + i));
    const behind = request(10, nowNs, 40);
    expect(admission.admit(model, behind, nowNs)).toEqual({});
    expect(behind.admission!.rowsAhead).toBe(3);
    const first = request(11, nowNs, 21.5);
    expect(admission.admit(model, first, nowNs)).toEqual({});
    expect(first.admission!.rowsAhead).toBe(2);
  });

  it('learns a margin from late outcomes and names it in refusals; each request counts once', () => {
    const { admission, model } = setUp();
    let nowNs = 1_000 * MS;
    for (let i = 0; i < 20; i++) {
      const r = request(i, nowNs, 30);
      expect(admission.admit(model, r, nowNs)).toEqual({});
      admission.settle(r, r.admission!.predictedCompleteNs + 20 * MS); // 20 ms late, every time
      admission.settle(r, r.admission!.predictedCompleteNs - 50 * MS); // a second answer does not count
      nowNs += 100 * MS;
    }
    // 2.5 ms predicted + 20 ms learned > 15 ms of SLO; 30 ms still fits
    expect(admission.admit(model, request(99, nowNs, 15), nowNs).refusal).toMatch(/\(\+ 20\.00 ms learned margin\)/);
    expect(admission.admit(model, request(100, nowNs, 30), nowNs)).toEqual({});
  });
});
