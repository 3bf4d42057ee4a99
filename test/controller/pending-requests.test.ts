import { describe, expect, it } from 'vitest';
import type { RequestOrigin } from '../../controller/client-gateway.js';
import { ModelRepository } from '../../controller/model-repository.js';
import { answerFor, PendingRequests } from '../../controller/pending-requests.js';
import type { ResponseMsg, SubmitMsg } from '../../shared/protocol.js';
import { loadModelEntry } from '../../shared/model-manifest.js';

const origin = (client: string, id: string): RequestOrigin => ({ dedupeKey: `${client}/${id}`, clientKey: client, send: () => undefined });
const submit = (requestId: string): SubmitMsg => ({ type: 'submit', requestId, model: 'm', inputs: [] });

describe('pending requests (pending-requests.ts)', () => {
  it('knows a client id in flight, counts each client, and forgets a request once taken', () => {
    const pending = new PendingRequests();
    const a1 = pending.add(origin('a', '1'), submit('1'), [], 10, 20);
    pending.add(origin('a', '2'), submit('2'), [], 11, 21);
    pending.add(origin('b', '1'), submit('1'), [], 12, 22);
    expect(pending.isDuplicate(origin('a', '1'))).toBe(true);
    expect(pending.isDuplicate(origin('b', '2'))).toBe(false);
    expect(pending.numPendingOf(origin('a', 'x'))).toBe(2);
    pending.take(a1);
    expect(pending.isDuplicate(origin('a', '1'))).toBe(false);
    expect(pending.numPendingOf(origin('a', 'x'))).toBe(1);
    expect(pending.get(a1.id)).toBeUndefined();
    expect(pending.size).toBe(2);
    expect(new Set(pending.all().map((r) => r.id)).size).toBe(2); // ids are never reused
  });

  it('answers a request with its own row of each output, and without outputs when the model did not run for it', () => {
    const pending = new PendingRequests();
    const request = pending.add(origin('a', 'r'), submit('r'), [], 100, 900);
    const logits = Float32Array.from({ length: 3 * 2 }, (_, i) => i);
    const outputs = [{ name: 'y', dtype: 'float32' as const, shape: [3, 2], data: new Uint8Array(logits.buffer) }];
    const ran = answerFor(request, { status: 'OK', code: 0, completeNs: 500, batchIndex: 2, workerId: 'w', batchSize: 3, early: false }, outputs);
    expect(ran.response).toEqual<ResponseMsg>({
      type: 'response',
      requestId: 'r',
      status: 'OK',
      code: 0,
      arrivalNs: 100,
      deadlineNs: 900,
      completeNs: 500,
      workerId: 'w',
      batchSize: 3,
      early: false,
      outputs: [{ name: 'y', dtype: 'float32', shape: [1, 2] }],
    });
    expect(Array.from(new Float32Array(ran.frames[0]!.slice().buffer))).toEqual([4, 5]);
    const refused = answerFor(request, { status: 'REJECTED', code: 21, message: 'too late', completeNs: 100 }, outputs);
    expect(refused.response.outputs).toBeUndefined();
    expect(refused.frames).toEqual([]);
  });
});

describe('the model repository (model-repository.ts)', () => {
  it("lists each model's state as the planner has it, and counts answers per model", () => {
    const entry = loadModelEntry('models', 'mnist-cnn');
    let out = false;
    let state: 'ready' | 'loading' | 'unavailable' = 'loading';
    const repo = new ModelRepository(new Map([['mnist-cnn', entry]]), { isOutOfService: () => out, modelState: () => state });
    expect(repo.index()).toEqual([{ name: 'mnist-cnn', version: '1', state: 'LOADING', reason: '' }]);
    state = 'ready';
    expect(repo.isReady('mnist-cnn')).toBe(true);
    out = true;
    expect(repo.index()).toEqual([{ name: 'mnist-cnn', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' }]);
    expect(repo.isReady('mnist-cnn')).toBe(false);
    repo.record('mnist-cnn', 'OK', true, 5e6);
    repo.record('mnist-cnn', 'OK', false, 3e6);
    repo.record('mnist-cnn', 'DEADLINE_MISSED', false, 9e6);
    expect(repo.statsFor('mnist-cnn')).toEqual({ success: 2, failure: 1, early: 1, successNs: 8e6 });
    expect(repo.statsFor('other')).toEqual({ success: 0, failure: 0, early: 0, successNs: 0 });
  });
});
