import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/error-codes.js';
import { FakeCluster, MS, modelSpec } from '../support/fake-cluster.js';

/** A cluster with model(s) already loaded on every worker. */
function warmCluster(models = [modelSpec('a')], numWorkers = 1, config = {}) {
  const cluster = new FakeCluster(models, config);
  for (let i = 0; i < numWorkers; i++) cluster.addWorker(`w${i}`, 10_000);
  for (const m of models) cluster.scheduler.pin(m.name);
  cluster.runForMs(100); // loads finish
  return cluster;
}

describe('Scheduler admission', () => {
  it('rejects a request for an unknown model at arrival', () => {
    const cluster = warmCluster();
    const id = cluster.submit('nope', 50);
    expect(cluster.outcomeOf(id)).toMatchObject({ status: 'REJECTED', code: ErrorCode.UNKNOWN_MODEL });
  });

  it('rejects a request whose deadline is before the earliest possible completion', () => {
    const cluster = warmCluster();
    // batch 1 takes 1.5 ms: a 1 ms SLO cannot be met on any worker
    const id = cluster.submit('a', 1);
    expect(cluster.outcomeOf(id)).toMatchObject({ status: 'REJECTED', code: ErrorCode.CANNOT_MEET_DEADLINE });
    expect(cluster.outcomeOf(id)!.message).toMatch(/earliest predicted completion/);
  });

  it('rejects at arrival when the work queued ahead makes the deadline infeasible', () => {
    const cluster = warmCluster();
    // Same 20 ms SLO for all: request k waits behind floor(k/16) full batches of 9 ms each.
    const ids = Array.from({ length: 64 }, () => cluster.submit('a', 20));
    const statuses = ids.map((id) => cluster.outcomeOf(id)?.status ?? 'QUEUED');
    expect(statuses.slice(0, 16)).toEqual(Array(16).fill('QUEUED'));
    expect(statuses.at(-1)).toBe('REJECTED');
    expect(cluster.outcomeOf(ids.at(-1)!)!.code).toBe(ErrorCode.CANNOT_MEET_DEADLINE);
    // a request with an earlier deadline jumps the queue (EDF) and is admitted
    const urgent = cluster.submit('a', 10);
    expect(cluster.outcomeOf(urgent)).toBeUndefined();
  });

  it('rejects everything with NO_WORKERS before any worker registers', () => {
    const cluster = new FakeCluster([modelSpec('a')]);
    const id = cluster.submit('a', 50);
    expect(cluster.outcomeOf(id)).toMatchObject({ status: 'REJECTED', code: ErrorCode.NO_WORKERS });
  });

  it('keeps a model out of service after a repository unload, even once it is unloaded everywhere, until a repository load', () => {
    const cluster = warmCluster([modelSpec('a')]);
    expect(cluster.scheduler.modelState('a')).toBe('ready');
    cluster.scheduler.requestUnload('a');
    expect(cluster.scheduler.isOutOfService('a')).toBe(true);
    cluster.runForMs(50);
    expect(cluster.scheduler.modelState('a')).toBe('unavailable');
    expect(cluster.scheduler.isOutOfService('a')).toBe(true);
    cluster.scheduler.requestLoad('a');
    expect(cluster.scheduler.isOutOfService('a')).toBe(false);
    cluster.runForMs(50);
    expect(cluster.scheduler.modelState('a')).toBe('ready');
  });

  it('bounds the queue: arrivals beyond maxQueuedRequests get QUEUE_FULL', () => {
    const cluster = warmCluster([modelSpec('a')], 1, { maxQueuedRequests: 3 });
    const ids = Array.from({ length: 4 }, () => cluster.submit('a', 10_000));
    expect(ids.slice(0, 3).map((id) => cluster.outcomeOf(id))).toEqual([undefined, undefined, undefined]);
    expect(cluster.outcomeOf(ids[3]!)).toMatchObject({ status: 'REJECTED', code: ErrorCode.QUEUE_FULL });
  });
});

describe('Scheduler batching', () => {
  it('serves the model whose head request is most urgent first (EDF across models)', () => {
    const cluster = warmCluster([modelSpec('a'), modelSpec('b')]);
    cluster.clock.advanceNs(10 * MS);
    // Make the worker busy so both requests wait and compete for the next slot.
    const blocker = cluster.submit('a', 1000);
    cluster.plan();
    const relaxed = cluster.submit('a', 200);
    const urgent = cluster.submit('b', 50);
    const actions = cluster.plan();
    const infers = actions.filter((a) => a.action.type === 'infer');
    const order = infers.flatMap((a) => a.requests.map((r) => r.id));
    // the blocker was already planned; of the two waiting, the earlier deadline goes first
    expect(order).toEqual([urgent, relaxed]);
    expect(blocker).toBeLessThan(relaxed);
  });

  it('plans nothing for a worker whose timeline is busy beyond the schedule-ahead horizon', () => {
    const cluster = warmCluster();
    cluster.workers.get('w0')!.knobs.inferNs = () => 50 * MS;
    for (let i = 0; i < 16; i++) cluster.submit('a', 1000);
    cluster.plan();
    cluster.runForMs(1); // the fake worker started the batch; its profile still says 9 ms
    const ids = Array.from({ length: 10 }, () => cluster.submit('a', 1000));
    // predicted free in ~8 ms > 5 ms horizon: requests wait in the controller, unbound
    const infers = cluster.plan().filter((a) => a.action.type === 'infer');
    expect(infers).toHaveLength(0);
    expect(ids.every((id) => cluster.outcomeOf(id) === undefined)).toBe(true);
  });

  it('forms one padded batch from waiting requests when the worker frees up', () => {
    const cluster = warmCluster();
    const ids = Array.from({ length: 10 }, () => cluster.submit('a', 1000));
    const infers = cluster.plan().filter((a) => a.action.type === 'infer');
    expect(infers).toHaveLength(1);
    const action = infers[0]!.action;
    expect(action.type === 'infer' && action.batchSize).toBe(16);
    expect(action.type === 'infer' && action.numRequests).toBe(10);
    expect(infers[0]!.requests.map((r) => r.id)).toEqual(ids);
  });

  it('shrinks the batch so the most urgent member still finishes buffer-early', () => {
    // buffer 5 ms; batch 16 takes 9 ms, batch 8 takes 5 ms, batch 4 takes 3 ms
    const cluster = warmCluster([modelSpec('a')], 1, { bufferNs: 5 * MS });
    const urgent = cluster.submit('a', 11); // start ≈ now + 0.5 ms: 16 ends at 9.5 > 6; 8 ends at 5.5 ≤ 6
    for (let i = 0; i < 15; i++) cluster.submit('a', 1000);
    const infers = cluster.plan().filter((a) => a.action.type === 'infer');
    expect(infers[0]!.requests[0]!.id).toBe(urgent);
    const first = infers[0]!.action;
    expect(first.type === 'infer' && first.batchSize).toBe(8);
  });

  it('answers every request exactly once under sustained load, with OK for those that fit', () => {
    const cluster = warmCluster([modelSpec('a'), modelSpec('b')], 2);
    const ids: number[] = [];
    for (let step = 0; step < 400; step++) {
      ids.push(cluster.submit(step % 3 === 0 ? 'b' : 'a', 20 + (step % 5) * 10));
      cluster.runForMs(0.4);
    }
    cluster.runForMs(2000);
    const outcomes = ids.map((id) => cluster.outcomeOf(id));
    expect(outcomes.every((o) => o !== undefined)).toBe(true);
    const ok = outcomes.filter((o) => o!.status === 'OK').length;
    expect(ok).toBeGreaterThan(ids.length * 0.95);
    expect(outcomes.filter((o) => o!.status === 'ERROR')).toHaveLength(0);
  });

  it('drops queued requests as soon as a late result shows they cannot finish, before their deadline', () => {
    const cluster = warmCluster();
    // The worker runs 10x slower than profiled; the controller learns it from the first result.
    cluster.workers.get('w0')!.knobs.inferNs = (_m, b) => 10 * (1 * MS + 0.5 * MS * b);
    const arrivalNs = cluster.clock.nowNs();
    const ids = Array.from({ length: 120 }, () => cluster.submit('a', 150));
    expect(ids.every((id) => cluster.outcomeOf(id) === undefined)).toBe(true); // all admitted
    cluster.runForMs(400);
    const outcomes = ids.map((id) => cluster.outcomeOf(id)!);
    expect(outcomes.every((o) => o !== undefined)).toBe(true);
    const dropped = outcomes.filter((o) => o.code === ErrorCode.DROPPED_BEFORE_EXECUTION);
    expect(dropped.length).toBeGreaterThan(0);
    for (const o of dropped) expect(o.completeNs).toBeLessThan(arrivalNs + 150 * MS);
  });
});

describe('Scheduler timeline', () => {
  it('re-anchors a worker timeline on a late result and plans the next batch after it', () => {
    const cluster = warmCluster();
    const worker = cluster.workers.get('w0')!;
    worker.knobs.inferNs = () => 20 * MS; // profiled 1.5 ms, actually 20 ms
    cluster.submit('a', 1000);
    const [first] = cluster.plan().filter((a) => a.action.type === 'infer');
    const plannedEndNs = first!.action.expectedStartNs + first!.action.expectedDurationNs;
    cluster.runForMs(25); // the late result arrives at ≈ start + 20 ms
    const id = cluster.submit('a', 1000);
    const [second] = cluster.plan().filter((a) => a.action.type === 'infer');
    expect(second!.requests[0]!.id).toBe(id);
    expect(second!.action.expectedStartNs).toBeGreaterThan(plannedEndNs + 15 * MS);
  });

  it('reuses time a batch frees by ending early: the next batch starts when it ends, not when it was planned to', () => {
    const cluster = warmCluster();
    const worker = cluster.workers.get('w0')!;
    const startNs = cluster.clock.nowNs();
    const ids = Array.from({ length: 32 }, () => cluster.submit('a', 1000));
    const [first] = cluster.plan().filter((a) => a.action.type === 'infer');
    expect(first!.action.expectedDurationNs).toBeGreaterThan(8 * MS); // batch 16 is profiled at 9 ms
    // every batch sheds rows (as a compact batch does at its ramps) and runs 2 ms
    worker.knobs.inferNs = () => 2 * MS;
    cluster.runForMs(6);
    // the second batch was planned from the first one's reported end, so both are done by ~4 ms
    const completions = ids.map((id) => cluster.outcomeOf(id)!);
    expect(completions.every((o) => o.status === 'OK')).toBe(true);
    expect(Math.max(...completions.map((o) => o.completeNs)) - startNs).toBeLessThan(6 * MS);
  });

  it('keeps an INFER startable as long as its requests can still finish, within bounds', () => {
    const cluster = warmCluster();
    const windowOf = (sloMs: number) => {
      cluster.runForMs(20);
      const nowNs = cluster.clock.nowNs();
      cluster.submit('a', sloMs);
      const [planned] = cluster.plan().filter((a) => a.action.type === 'infer');
      return { nowNs, action: planned!.action };
    };
    // Slack: a late worker may start it up to deadline - (tail estimate + delivery), not just 5 ms late.
    const slack = windowOf(15);
    expect(slack.action.latestNs).toBeGreaterThan(slack.nowNs + 11 * MS);
    expect(slack.action.latestNs).toBeLessThan(slack.nowNs + 14.5 * MS);
    // Lots of slack: capped at maxLatestDeltaNs (20 ms), so a lost result is still noticed soon.
    const capped = windowOf(1000);
    expect(capped.action.latestNs - capped.action.expectedStartNs).toBe(20 * MS);
    // Little slack: the fixed window (latestDeltaNs, 5 ms), never narrower.
    const tight = windowOf(7);
    expect(tight.action.latestNs - tight.action.expectedStartNs).toBe(5 * MS);
  });

  it('predicts the timeline with typical durations and checks deadlines against the tail', () => {
    const cluster = warmCluster();
    let run = 0;
    cluster.workers.get('w0')!.knobs.inferNs = () => (run++ % 5 === 0 ? 12 * MS : 3 * MS); // 20 % run 4x long
    for (let i = 0; i < 120; i++) {
      cluster.submit('a', 1000);
      cluster.runForMs(20);
    }
    cluster.submit('a', 1000);
    const [planned] = cluster.plan().filter((a) => a.action.type === 'infer');
    // the median (within the worker-shift tracker's few-% wobble), not the 12 ms tail or the 4.8 ms mean
    expect(planned!.action.expectedDurationNs).toBeGreaterThan(2.8 * MS);
    expect(planned!.action.expectedDurationNs).toBeLessThan(3.2 * MS);
    // Admission relies on the tail: a 10 ms SLO cannot be promised at 12 ms, a 16 ms one can.
    cluster.runForMs(20);
    expect(cluster.outcomeOf(cluster.submit('a', 10))).toMatchObject({ status: 'REJECTED' });
    expect(cluster.outcomeOf(cluster.submit('a', 16))).toBeUndefined();
  });

  it('learns from measurements: estimates move toward the observed durations', () => {
    const cluster = warmCluster();
    cluster.workers.get('w0')!.knobs.inferNs = () => 4 * MS;
    for (let i = 0; i < 30; i++) {
      cluster.submit('a', 1000);
      cluster.runForMs(10);
    }
    cluster.submit('a', 1000);
    const [next] = cluster.plan().filter((a) => a.action.type === 'infer');
    expect(next!.action.expectedDurationNs).toBeGreaterThanOrEqual(3.9 * MS);
  });
});

describe('Scheduler placement', () => {
  it('loads a model on demand and serves its queued requests once loaded', () => {
    const cluster = new FakeCluster([modelSpec('a')]);
    cluster.addWorker('w0', 1_000);
    const id = cluster.submit('a', 5_000);
    const loads = cluster.plan().filter((a) => a.action.type === 'load');
    expect(loads).toHaveLength(1);
    cluster.runForMs(100);
    expect(cluster.outcomeOf(id)).toMatchObject({ status: 'OK', workerId: 'w0' });
  });

  it('unloads the least recently used model without demand to make room under the memory budget', () => {
    const cluster = new FakeCluster([modelSpec('a', { weightsBytes: 600 }), modelSpec('b', { weightsBytes: 600 }), modelSpec('c', { weightsBytes: 300 })]);
    cluster.addWorker('w0', 1_000);
    cluster.submit('a', 5_000);
    cluster.runForMs(100);
    const idB = cluster.submit('b', 5_000);
    const actions = cluster.plan();
    expect(actions.map((a) => `${a.action.type}:${a.action.modelName}`)).toEqual(['unload:a', 'load:b']);
    cluster.runForMs(100);
    expect(cluster.outcomeOf(idB)?.status).toBe('OK');
  });

  it('never unloads a model that has queued requests', () => {
    const cluster = new FakeCluster([modelSpec('a', { weightsBytes: 600 }), modelSpec('b', { weightsBytes: 600 })]);
    cluster.addWorker('w0', 1_000);
    cluster.submit('a', 5_000);
    cluster.runForMs(100);
    cluster.workers.get('w0')!.knobs.inferNs = () => 50 * MS;
    for (let i = 0; i < 20; i++) cluster.submit('a', 5_000); // keep demand for a
    cluster.plan();
    cluster.submit('b', 5_000);
    const actions = cluster.plan();
    expect(actions.some((a) => a.action.type === 'unload')).toBe(false);
  });

  it('replicates a model whose backlog exceeds the threshold onto a worker with free memory', () => {
    const cluster = new FakeCluster([modelSpec('a')], { replicateBacklogNs: 5 * MS });
    cluster.addWorker('w0', 1_000);
    cluster.addWorker('w1', 1_000);
    cluster.submit('a', 5_000);
    cluster.runForMs(100);
    for (let i = 0; i < 64; i++) cluster.submit('a', 5_000);
    const loads = cluster.plan().filter((a) => a.action.type === 'load');
    expect(loads).toHaveLength(1);
  });

  it('fails queued requests with MODEL_UNAVAILABLE when no worker can load the model', () => {
    const cluster = new FakeCluster([modelSpec('a')]);
    cluster.addWorker('w0', 1_000);
    const id = cluster.submit('a', 5_000);
    const [load] = cluster.plan();
    const result = {
      type: 'result' as const,
      actionId: load!.action.actionId,
      actionType: 'load' as const,
      modelName: 'a',
      code: ErrorCode.LOAD_UNKNOWN_MODEL,
      message: 'no such model',
      timing: { receivedNs: 0, startNs: 0, endNs: 0, durationNs: 0, sentNs: 0 },
    };
    cluster.workers.get('w0')!.queue.length = 0;
    cluster.scheduler.onResult('w0', result, cluster.clock.nowNs());
    cluster.plan();
    expect(cluster.outcomeOf(id)).toMatchObject({ status: 'ERROR', code: ErrorCode.MODEL_UNAVAILABLE });
  });
});

describe('Scheduler worker failures', () => {
  it('re-plans the in-flight requests of a lost worker on another worker', () => {
    const cluster = warmCluster([modelSpec('a')], 2);
    const ids = Array.from({ length: 4 }, () => cluster.submit('a', 500));
    const infers = cluster.plan().filter((a) => a.action.type === 'infer');
    const victim = infers[0]!.workerId;
    cluster.workers.get(victim)!.queue.length = 0;
    cluster.workers.delete(victim);
    const outcomes = cluster.scheduler.removeWorker(victim, cluster.clock.nowNs());
    expect(outcomes).toHaveLength(0); // all re-queued
    cluster.runForMs(100);
    for (const id of ids) expect(cluster.outcomeOf(id)).toMatchObject({ status: 'OK' });
  });

  it('answers WORKER_LOST when no other worker remains', () => {
    const cluster = warmCluster([modelSpec('a')], 1);
    const id = cluster.submit('a', 500);
    cluster.plan();
    const outcomes = cluster.scheduler.removeWorker('w0', cluster.clock.nowNs());
    expect(outcomes).toEqual([expect.objectContaining({ requestId: id, status: 'ERROR', code: ErrorCode.WORKER_LOST })]);
  });

  it('re-queues a batch the worker refused as too late, then serves it', () => {
    const cluster = warmCluster();
    const worker = cluster.workers.get('w0')!;
    worker.knobs.failInferWith = ErrorCode.INFER_TOO_LATE;
    const id = cluster.submit('a', 200);
    cluster.runForMs(1.8);
    expect(cluster.outcomeOf(id)).toBeUndefined();
    worker.knobs.failInferWith = 0;
    cluster.runForMs(50);
    expect(cluster.outcomeOf(id)?.status).toBe('OK');
  });

  it('answers ERROR with the worker code when a batch fails at run time', () => {
    const cluster = warmCluster();
    cluster.workers.get('w0')!.knobs.failInferWith = ErrorCode.INFER_RUNTIME_ERROR;
    const id = cluster.submit('a', 200);
    cluster.runForMs(50);
    expect(cluster.outcomeOf(id)).toMatchObject({ status: 'ERROR', code: ErrorCode.INFER_RUNTIME_ERROR });
  });
});

describe('Scheduler lost results', () => {
  it('gives up on an action whose result never arrives and re-plans its requests', () => {
    const cluster = warmCluster([modelSpec('a')], 1, { overdueGraceNs: 100 * MS });
    const id = cluster.submit('a', 5_000);
    const [first] = cluster.plan().filter((a) => a.action.type === 'infer');
    cluster.workers.get('w0')!.queue.length = 0; // the message was lost on the way
    cluster.runForMs(50);
    expect(cluster.outcomeOf(id)).toBeUndefined();
    cluster.runForMs(200); // past latest + expected + grace: re-planned and served
    expect(cluster.outcomeOf(id)).toMatchObject({ status: 'OK' });
    expect(cluster.workers.get('w0')!.executed.some((p) => p.action.actionId === first!.action.actionId)).toBe(false);
  });
});

describe('Scheduler late LOADs', () => {
  it('adopts a LOAD it gave up on that the worker finished after all: the model is loaded there, its memory counted once', () => {
    // the LOAD takes 5 s against a 1 s estimate: overdue at its latest start (1 s) + 1 s + 0.1 s grace
    const cluster = new FakeCluster([modelSpec('a', { weightsBytes: 400 })], { overdueGraceNs: 100 * MS, defaultLoadNs: 1_000 * MS });
    const worker = cluster.addWorker('w0', 1_000, { loadNs: 5_000 * MS });
    cluster.scheduler.pin('a');
    const [first] = cluster.plan().filter((a) => a.action.type === 'load');
    cluster.runForMs(2_500);
    const view = () => cluster.scheduler.snapshot(cluster.clock.nowNs()).workers[0]!;
    // given up on: re-planned behind it on the same worker (the fake runs actions in order)
    expect(worker.queue.some((p) => p.action.type === 'load' && p.action.actionId !== first!.action.actionId)).toBe(true);
    expect(cluster.scheduler.modelState('a')).toBe('loading');
    cluster.runForMs(2_600); // the first LOAD's late result arrives at 5 s
    expect(view().models).toEqual([{ name: 'a', state: 'loaded' }]);
    expect(view().usedBytes).toBe(400);
    expect(cluster.scheduler.modelState('a')).toBe('ready');
  });

  it('keeps a model it adopted when the worker answers the re-planned LOAD with LOAD_ALREADY_LOADED', () => {
    const cluster = new FakeCluster([modelSpec('a', { weightsBytes: 400 })], { overdueGraceNs: 100 * MS, defaultLoadNs: 1_000 * MS });
    const worker = cluster.addWorker('w0', 1_000, { loadNs: 5_000 * MS });
    cluster.scheduler.pin('a');
    cluster.plan();
    cluster.runForMs(5_100); // adopted
    const [second] = worker.queue.filter((p) => p.action.type === 'load');
    worker.queue.splice(worker.queue.indexOf(second!), 1); // the real worker refuses it at once
    const nowNs = cluster.clock.nowNs();
    cluster.scheduler.onResult(
      'w0',
      {
        type: 'result',
        actionId: second!.action.actionId,
        actionType: 'load',
        modelName: 'a',
        code: ErrorCode.LOAD_ALREADY_LOADED,
        timing: { receivedNs: nowNs, startNs: nowNs, endNs: nowNs, durationNs: 0, sentNs: nowNs },
      },
      nowNs,
    );
    expect(cluster.scheduler.snapshot(nowNs).workers[0]!).toMatchObject({ usedBytes: 400, models: [{ name: 'a', state: 'loaded' }] });
  });
});

describe('the FIFO batching baseline', () => {
  const fifo = () => warmCluster([modelSpec('a')], 1, { policy: 'fifo', batchTimeoutNs: 5 * MS, maxBatchSize: 8 });

  it('keeps serving a worker whose learned start delay is above the configured one (it is idle all the same)', () => {
    const cluster = new FakeCluster([modelSpec('a')], { policy: 'fifo', batchTimeoutNs: 5 * MS, maxBatchSize: 8 });
    cluster.addWorker('w0', 10_000, { startDelayNs: 2 * MS });
    cluster.scheduler.pin('a');
    cluster.runForMs(100);
    const ids: number[] = [];
    for (let i = 0; i < 60; i++) {
      ids.push(cluster.submit('a', 100));
      cluster.runForMs(20);
    }
    expect(cluster.workers.get('w0')!.executed.filter((p) => p.action.type === 'infer').length).toBeGreaterThanOrEqual(60);
    expect(ids.map((id) => cluster.outcomeOf(id)?.status)).toEqual(Array(60).fill('OK'));
  });

  it('holds a partial batch until the oldest request has waited the batch timeout', () => {
    const cluster = fifo();
    const ids = [cluster.submit('a', 1000), cluster.submit('a', 1000)];
    expect(cluster.plan().filter((a) => a.action.type === 'infer')).toHaveLength(0);
    cluster.clock.advanceNs(5 * MS);
    const [batch] = cluster.plan().filter((a) => a.action.type === 'infer');
    expect(batch!.requests.map((r) => r.id)).toEqual(ids);
  });

  it('sends a full batch at once, in arrival order', () => {
    const cluster = fifo();
    const ids = Array.from({ length: 10 }, () => cluster.submit('a', 1000));
    const [batch] = cluster.plan().filter((a) => a.action.type === 'infer');
    expect(batch!.requests.map((r) => r.id)).toEqual(ids.slice(0, 8));
  });

  it('admits what it cannot serve in time and answers it late, where the planner rejects at once', () => {
    const cluster = fifo();
    const id = cluster.submit('a', 1);
    expect(cluster.outcomeOf(id)).toBeUndefined();
    cluster.runForMs(50);
    expect(cluster.outcomeOf(id)).toMatchObject({ status: 'DEADLINE_MISSED' });
    const planner = warmCluster();
    expect(planner.outcomeOf(planner.submit('a', 1))).toMatchObject({ status: 'REJECTED' });
  });
  it('answers queued requests when their deadline passes, also after the last worker holding the model is gone', () => {
    const cluster = fifo();
    const ids = [cluster.submit('a', 20), cluster.submit('a', 40)]; // a partial batch: it waits the batch timeout
    expect(cluster.scheduler.removeWorker('w0', cluster.clock.nowNs())).toEqual([]);
    cluster.workers.delete('w0');
    cluster.runForMs(25);
    expect(cluster.outcomeOf(ids[0]!)).toMatchObject({ status: 'DEADLINE_MISSED', code: ErrorCode.DROPPED_BEFORE_EXECUTION });
    expect(cluster.outcomeOf(ids[1]!)).toBeUndefined();
    cluster.runForMs(20);
    expect(cluster.outcomeOf(ids[1]!)).toMatchObject({ status: 'DEADLINE_MISSED' });
  });

  it('bounds its queue like TF-Serving: beyond maxEnqueuedBatches full batches, QUEUE_FULL at once', () => {
    const bounded = warmCluster([modelSpec('a')], 1, { policy: 'fifo', maxBatchSize: 8, maxEnqueuedBatches: 2 });
    const ids = Array.from({ length: 17 }, () => bounded.submit('a', 1000));
    expect(ids.slice(0, 16).map((id) => bounded.outcomeOf(id))).toEqual(Array(16).fill(undefined));
    expect(bounded.outcomeOf(ids[16]!)).toMatchObject({ status: 'REJECTED', code: ErrorCode.QUEUE_FULL });
    expect(bounded.outcomeOf(ids[16]!)!.message).toMatch(/fifo bound: 2 batches/);
    bounded.runForMs(100); // the queue drains, arrivals are admitted again
    expect(bounded.outcomeOf(bounded.submit('a', 1000))).toBeUndefined();
    const unbounded = warmCluster([modelSpec('a')], 1, { policy: 'fifo', maxBatchSize: 8, maxEnqueuedBatches: 0 });
    const many = Array.from({ length: 100 }, () => unbounded.submit('a', 1000));
    expect(many.every((id) => unbounded.outcomeOf(id) === undefined)).toBe(true);
  });
});

describe('the planner under overload', () => {
  it('rejects at arrival what draining the queue cannot finish in time, and serves all it admits by their deadlines', () => {
    const cluster = warmCluster([modelSpec('a')], 2); // batch 16 takes 9 ms, batch 1 1.5 ms
    const burst = Array.from({ length: 300 }, () => cluster.submit('a', 40));
    cluster.runForMs(200);
    const outcomes = burst.map((id) => cluster.outcomeOf(id)!);
    const rejected = outcomes.filter((o) => o.status === 'REJECTED');
    expect(rejected.every((o) => o.code === ErrorCode.CANNOT_MEET_DEADLINE && /earliest predicted completion/.test(o.message!))).toBe(true);
    expect(outcomes.filter((o) => o.status === 'DEADLINE_MISSED')).toEqual([]);
    // two workers finish 6 full batches (9 ms each) 5 ms before a 40 ms deadline: 96 requests
    expect(outcomes.filter((o) => o.status === 'OK').length).toBeGreaterThanOrEqual(90);
  });

  it('serves the urgent head first when the backlog is no more than a full batch', () => {
    const cluster = warmCluster();
    const late = Array.from({ length: 4 }, () => cluster.submit('a', 8));
    Array.from({ length: 12 }, () => cluster.submit('a', 60)); // 16 waiting: one full batch
    const [first] = cluster.plan().filter((a) => a.action.type === 'infer');
    expect(first!.requests[0]!.id).toBe(late[0]);
  });
});

describe('the planner at light load', () => {
  it('spreads requests over idle workers, the one idle longest first', () => {
    const cluster = warmCluster([modelSpec('a')], 2);
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) {
      ids.push(cluster.submit('a', 50));
      cluster.runForMs(20); // each request finishes before the next arrives
    }
    const workers = ids.map((id) => cluster.outcomeOf(id)!.workerId);
    expect(workers.filter((w) => w === 'w0')).toHaveLength(3);
    expect(workers.filter((w) => w === 'w1')).toHaveLength(3);
  });
  it("plans each idle worker's actions to start after that worker's own learned delay", () => {
    const cluster = new FakeCluster([modelSpec('a')]);
    cluster.addWorker('near', 10_000);
    cluster.addWorker('far', 10_000, { startDelayNs: 3 * MS }); // another host: its actions start 3 ms after planning
    cluster.scheduler.pin('a');
    cluster.runForMs(100);
    for (let i = 0; i < 80; i++) {
      cluster.submit('a', 100);
      cluster.runForMs(20);
    }
    const startErrorsMs = (id: string) => {
      const w = cluster.workers.get(id)!;
      return w.executed.flatMap((p, k) => (p.action.type === 'infer' ? [(w.spans[k]!.startNs - p.action.expectedStartNs) / MS] : []));
    };
    // both served the light load (spread, the one idle longest first), whatever their delays
    expect(startErrorsMs('near').length).toBeGreaterThan(30);
    expect(startErrorsMs('far').length).toBeGreaterThan(30);
    // at first the far worker started 2.5 ms later than planned (the configured 0.5 ms delay); once learned, on time
    expect(startErrorsMs('far')[0]).toBeCloseTo(2.5, 3);
    for (const e of startErrorsMs('far').slice(-10)) expect(Math.abs(e)).toBeLessThan(0.01);
    for (const e of startErrorsMs('near').slice(-10)) expect(Math.abs(e)).toBeLessThan(0.01);
    const snapshot = cluster.scheduler.snapshot(cluster.clock.nowNs()) as { workers: { id: string; startDelayMs: number }[] };
    expect(Object.fromEntries(snapshot.workers.map((w) => [w.id, w.startDelayMs]))).toEqual({ near: 0, far: 3 });
  });
});
