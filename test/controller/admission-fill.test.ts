import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../prepare/ramp-trainer.js';
import { FakeCluster, MS, modelSpec } from '../support/fake-cluster.js';

/**
 * A device where batching does not pay and a full batch outlasts the SLO (3 ms a row: a batch of
 * 16 takes 48 ms against a 40 ms SLO), as fmnist-resnet on an AVX2 host: the planner serves such
 * a load in small batches, and admission must predict those, not batches it would never run.
 */
function cluster(): FakeCluster {
  const c = new FakeCluster([modelSpec('m')]);
  for (const id of ['w0', 'w1']) c.addWorker(id, 10_000, { inferNs: (_m, b) => 3 * b * MS, profileNs: (_m, b) => 3 * b * MS });
  c.scheduler.pin('m');
  c.runForMs(100);
  return c;
}

/** `count` requests at gaps drawn evenly from 0.5-1.5x `gapMs` (seeded). */
function serve(c: FakeCluster, gapMs: number, count: number, sloMs: number) {
  const random = seededRandom(7);
  const ids = Array.from({ length: count }, () => {
    const id = c.submit('m', sloMs);
    c.runForMs(gapMs * (0.5 + random()));
    return id;
  });
  c.runForMs(200);
  const statuses = ids.map((id) => c.outcomeOf(id)!.status);
  return {
    ok: statuses.filter((s) => s === 'OK').length,
    rejected: statuses.filter((s) => s === 'REJECTED').length,
    missed: statuses.filter((s) => s === 'DEADLINE_MISSED').length,
  };
}

describe('admission on a device where a full batch outlasts the SLO', () => {
  it('admits a steady 60 % load that the planner serves in time in small batches', () => {
    // 400 requests/s against 2 x 333 a second at any batch size
    const { ok, rejected, missed } = serve(cluster(), 2.5, 1_200, 40);
    expect(missed).toBe(0);
    expect(rejected).toBeLessThanOrEqual(12);
    expect(ok).toBeGreaterThanOrEqual(1_188);
  });

  it('while both workers run long batches, admits what a small batch serves in time, as the planner will run it', () => {
    const c = cluster();
    // both workers busy for 48 ms with a full batch each
    for (let i = 0; i < 32; i++) c.submit('m', 200);
    c.runForMs(0.5);
    // then one request every 4 ms with 60 ms to spare: once a worker frees (48 ms), a batch of up to
    // 4 rows (12 ms) ends in time for the first ones. NOTE: predicting each into the batch that
    // arrivals would fill by then (12 rows, 36 ms) rejected 8 of the 20, where 6 must be.
    const ids = Array.from({ length: 20 }, () => {
      const id = c.submit('m', 60);
      c.runForMs(4);
      return id;
    });
    c.runForMs(300);
    const statuses = ids.map((id) => c.outcomeOf(id)!.status);
    expect(statuses.filter((s) => s === 'DEADLINE_MISSED')).toEqual([]);
    expect(statuses.filter((s) => s === 'OK').length).toBeGreaterThanOrEqual(14);
  });
});
