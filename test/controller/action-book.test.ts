import { describe, expect, it } from 'vitest';
import { ActionBook } from '../../controller/action-book.js';
import { newWorkerState, type WorkerState } from '../../controller/cluster-state.js';
import type { QueuedRequest } from '../../controller/request-queue.js';
import { DEFAULT_SCHEDULER_CONFIG } from '../../controller/scheduler-config.js';
import type { InferAction, LoadAction } from '../../shared/protocol.js';

const config = DEFAULT_SCHEDULER_CONFIG;
const MS = 1e6;

describe('the action book (action-book.ts)', () => {
  it('gives each action a new id and a window from now to a start latestDelta after the planned one', () => {
    const book = new ActionBook(config);
    const nowNs = 1000 * MS;
    const near = book.window(nowNs, 3.4 * MS, 5 * MS, nowNs);
    const far = book.window(nowNs + 500 * MS, 3 * MS, 5 * MS, nowNs);
    expect(far.actionId).toBe(near.actionId + 1);
    expect(near).toMatchObject({ earliestNs: nowNs, expectedStartNs: nowNs, expectedDurationNs: 3.4 * MS });
    // never before the timeline's future horizon, else the planned start plus the delta
    expect(near.latestNs).toBe(nowNs + config.timeline.futureNs + 5 * MS);
    expect(far.latestNs).toBe(nowNs + 505 * MS);
  });

  it('expires only what is overdue: a LOAD is forgotten and remembered as abandoned, an INFER gives its requests back', () => {
    const book = new ActionBook(config);
    const worker: WorkerState = newWorkerState('w0', 2 ** 30, config.timeline);
    const nowNs = 1000 * MS;
    const load = { type: 'load', ...book.window(nowNs, 10 * MS, 5 * MS, nowNs), modelName: 'a', batchSizes: [1] } as LoadAction;
    const requests: QueuedRequest[] = [{ id: 7, model: 'a', arrivalNs: nowNs, deadlineNs: nowNs + 100 * MS }];
    const infer = { type: 'infer', ...book.window(nowNs, 2 * MS, 5 * MS, nowNs), modelName: 'a', batchSize: 1, numRequests: 1, inputs: [] } as InferAction;
    book.commit(worker, load, [], nowNs);
    book.commit(worker, infer, requests, nowNs);
    expect(worker.inflight.size).toBe(2);
    const overdueNs = infer.latestNs + infer.expectedDurationNs + config.overdueGraceNs;
    expect(book.nextCheckNs).toBe(Math.min(overdueNs, load.latestNs + load.expectedDurationNs + config.overdueGraceNs));
    const forgotten: string[] = [];
    const requeued: number[] = [];
    const handling = {
      forgetInstance: (_w: WorkerState, model: string) => void forgotten.push(model),
      requeue: (r: QueuedRequest) => void requeued.push(r.id),
    };
    book.expireOverdue([worker], overdueNs - 1, handling);
    expect(worker.inflight.size).toBe(2);
    book.expireOverdue([worker], overdueNs + 20 * MS, handling);
    expect(worker.inflight.size).toBe(0);
    expect(forgotten).toEqual(['a']);
    expect(requeued).toEqual([7]);
    expect([...worker.abandonedLoads.keys()]).toEqual([load.actionId]);
    expect(book.nextCheckNs).toBe(Number.POSITIVE_INFINITY);
  });
});
