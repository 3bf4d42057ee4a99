import { describe, expect, it } from 'vitest';
import { drainCompletionNs, type DrainQuery } from '../../controller/queue-drain.js';

const MS = 1e6;
const T0 = 12_345_678.9 * MS; // a monotonic clock hours into the host's uptime (~1e13 ns)

function query(overrides: Partial<DrainQuery>): DrainQuery {
  return { lanes: [], numFullAhead: 0, ownRows: 1, maxRows: 16, arrivalsPerNs: 0, planAheadNs: 5 * MS, nowNs: T0, ...overrides };
}
const lane = (startMs: number, fullMs: number, perRowMs = 1) => ({
  startNs: T0 + startMs * MS,
  fullNs: fullMs * MS,
  ownNs: (rows: number) => rows * perRowMs * MS,
});

describe('drainCompletionNs', () => {
  it('runs the own batch on the worker that finishes it first when nothing fills a batch ahead', () => {
    expect(drainCompletionNs(query({ lanes: [lane(10, 16), lane(2, 16)], ownRows: 3 }))).toBeCloseTo(T0 + 5 * MS, -2);
  });

  it('hands full batches ahead to the worker that frees first, then the own batch to the next free one', () => {
    // two workers free now, 16 ms a full batch: batches ahead go at 0 and 0, 16 and 16; the fifth slot is at 32
    const done = drainCompletionNs(query({ lanes: [lane(0, 16), lane(0, 16)], numFullAhead: 4, ownRows: 2 }));
    expect((done - T0) / MS).toBeCloseTo(32 + 2, 3);
  });

  it('finds the slot exactly, however large the clock (no Infinity from rounding)', () => {
    // found by search: with a clock ~1e13 ns, (slot - start) / full fell a hair below an integer
    for (const [startNs, fullNs, numFullAhead] of [
      [10628077221946.13, 7323710.04047055, 3],
      [10552216436696.355, 19535217.918162405, 1],
      [10913265324016.588, 152502.7676260681, 4],
    ] as const) {
      const done = drainCompletionNs(query({ nowNs: startNs, lanes: [{ startNs, fullNs, ownNs: (rows) => rows * MS }], numFullAhead, ownRows: 3 }));
      expect(Number.isFinite(done)).toBe(true);
      expect(done - startNs).toBeCloseTo(numFullAhead * fullNs + 3 * MS, -4);
    }
  });

  it('counts what arrives behind the request into its batch, up to a full one', () => {
    // 2 requests/ms keep arriving; the own batch starts 20 ms from now and is planned 5 ms before
    const done = drainCompletionNs(query({ lanes: [lane(20, 16)], ownRows: 1, arrivalsPerNs: 2 / MS }));
    expect((done - T0) / MS).toBeCloseTo(20 + 16, 3);
  });

  it('below a full batch, cuts a filled batch to the largest that ends in time, as the planner will, never below the rows it has', () => {
    // 3 ms a row; arrivals fill the batch to 10 rows (30 ms) by the time it is planned
    const filling = { lanes: [lane(20, 48, 3)], ownRows: 2, arrivalsPerNs: 0.5 / MS };
    expect((drainCompletionNs(query(filling)) - T0) / MS).toBeCloseTo(20 + 30, 3); // without a deadline: the filled batch
    expect((drainCompletionNs(query({ ...filling, latestFinishNs: T0 + 44 * MS })) - T0) / MS).toBeCloseTo(20 + 24, 3); // 8 rows end at 44 ms
    expect((drainCompletionNs(query({ ...filling, latestFinishNs: T0 + 60 * MS })) - T0) / MS).toBeCloseTo(20 + 30, 3); // it ends in time: kept
    // even the rows it has cannot end in time: their batch, not a smaller one (the request is late anyway)
    expect((drainCompletionNs(query({ ...filling, ownRows: 4, latestFinishNs: T0 + 25 * MS })) - T0) / MS).toBeCloseTo(20 + 12, 3);
  });

  it('with a full batch waiting (overload), keeps the full batch the planner runs for the requests that can make it', () => {
    const full = { lanes: [lane(20, 48, 3)], ownRows: 2, arrivalsPerNs: 2 / MS, latestFinishNs: T0 + 40 * MS };
    expect((drainCompletionNs(query(full)) - T0) / MS).toBeCloseTo(20 + 48, 3); // late: rejected at arrival
    const behind = drainCompletionNs(query({ ...full, lanes: [lane(0, 48, 3)], numFullAhead: 2, latestFinishNs: T0 + 120 * MS }));
    expect((behind - T0) / MS).toBeCloseTo(96 + 48, 3);
  });

  it('has no answer without a worker', () => {
    expect(drainCompletionNs(query({}))).toBe(Number.POSITIVE_INFINITY);
  });
});
