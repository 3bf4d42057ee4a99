import { describe, expect, it } from 'vitest';
import type { InferAction } from '../../shared/protocol.js';
import { profileKey } from '../../controller/profile-key.js';
import { FakeCluster, MS, modelSpec } from '../support/fake-cluster.js';

/** A text model: ids + mask [N, T], buckets 16/32/64/128; cost grows with the padded length. */
const textModel = modelSpec('text', {
  inputs: [
    { name: 'input_ids', dtype: 'int64', shape: [-1, -1] },
    { name: 'attention_mask', dtype: 'int64', shape: [-1, -1] },
  ],
  sequenceBuckets: [16, 32, 64, 128],
});
/** 0.2 ms + 10 µs per padded token: a batch at bucket 128 costs 8x one at 16. */
const costNs = (_m: string, b: number, seq: number) => 0.2 * MS + 0.01 * MS * b * seq;

function warm() {
  const cluster = new FakeCluster([textModel]);
  cluster.addWorker('w0', 10_000, { inferNs: costNs });
  cluster.scheduler.pin('text');
  cluster.runForMs(100);
  return cluster;
}

const infers = (cluster: FakeCluster) => [...cluster.workers.values()].flatMap((w) => w.executed).filter((p) => p.action.type === 'infer');

describe('Scheduler with sequence buckets (text models)', () => {
  it('packs the (batch size, sequence length) pair into one estimator key', () => {
    expect(profileKey(4)).toBe(4);
    expect(profileKey(4, 0)).toBe(4);
    expect(profileKey(4, 32)).not.toBe(profileKey(4, 64));
    expect(profileKey(16, 32)).not.toBe(profileKey(4, 32));
  });

  it('pads a batch to its longest member and sends that length in the INFER shapes', () => {
    const cluster = warm();
    cluster.clock.advanceNs(10 * MS);
    // one blocker keeps the worker busy so the next four queue up and batch together
    cluster.submit('text', 1000, 16);
    cluster.plan();
    const ids = [cluster.submit('text', 1000, 16), cluster.submit('text', 1000, 64), cluster.submit('text', 1000, 32)];
    cluster.runForMs(50);
    for (const id of ids) expect(cluster.outcomeOf(id)?.status).toBe('OK');
    const batch = infers(cluster).find((p) => p.requests.some((r) => r.id === ids[1]))!;
    const action = batch.action as InferAction;
    expect(action.sequenceLength).toBe(64);
    expect(action.inputs.map((t) => t.shape)).toEqual([
      [action.batchSize, 64],
      [action.batchSize, 64],
    ]);
  });

  it('predicts a batch from the profile of its own bucket, not the longest one', () => {
    const cluster = warm();
    cluster.clock.advanceNs(10 * MS);
    const short = cluster.submit('text', 1000, 16);
    cluster.runForMs(20);
    const long = cluster.submit('text', 1000, 128);
    cluster.runForMs(20);
    const actionOf = (id: number) => infers(cluster).find((p) => p.requests.some((r) => r.id === id))!.action;
    // batch 1 at 16 tokens: 0.36 ms; at 128 tokens: 1.48 ms
    expect(actionOf(short).expectedDurationNs).toBeCloseTo(costNs('text', 1, 16), -4);
    expect(actionOf(long).expectedDurationNs).toBeCloseTo(costNs('text', 1, 128), -4);
    expect([cluster.outcomeOf(short)?.status, cluster.outcomeOf(long)?.status]).toEqual(['OK', 'OK']);
  });

  it("admits by the request's own bucket: a tight SLO fits a short text but not a long one", () => {
    const cluster = warm();
    cluster.clock.advanceNs(10 * MS);
    // 1 ms SLO: batch 1 at 16 tokens (0.36 ms) fits, at 128 tokens (1.48 ms) cannot
    const short = cluster.submit('text', 1, 16);
    const long = cluster.submit('text', 1, 128);
    expect(cluster.outcomeOf(short)).toBeUndefined();
    expect(cluster.outcomeOf(long)).toMatchObject({ status: 'REJECTED' });
    cluster.runForMs(5);
    expect(cluster.outcomeOf(short)?.status).toBe('OK');
  });
});
