import { describe, expect, it } from 'vitest';
import { slowdownByArrivals, slowdownByOverlap } from '../../bench/run-slowdown.js';

describe('runs against their predictions, by arrivals during the run', () => {
  it('bands each run by the arrivals per ms while it ran, and reads its ratio there', () => {
    // arrivals: none in [0, 10), 1 per ms in [100, 120), 3 per ms in [200, 210)
    const arrivals = [...Array.from({ length: 20 }, (_, i) => 100.5 + i), ...Array.from({ length: 30 }, (_, i) => 200.1 + i / 3)];
    const bands = slowdownByArrivals(
      [
        { startMs: 0, durationMs: 10, expectedDurationMs: 10 },
        { startMs: 100, durationMs: 20, expectedDurationMs: 16 },
        { startMs: 200, durationMs: 10, expectedDurationMs: 5 },
        { startMs: 300, durationMs: 0, expectedDurationMs: 5 }, // not measured: left out
      ],
      arrivals.reverse(),
    );
    expect(bands.map((b) => b.numRuns)).toEqual([1, 0, 1, 1]);
    expect(bands[0]).toMatchObject({ fromPerMs: 0, toPerMs: 0.2, ratioP50: 1, ratioP90: 1 });
    expect(bands[1]!.ratioP50).toBeNaN();
    expect(bands[2]).toMatchObject({ fromPerMs: 1, toPerMs: 2, ratioP50: 1.25 });
    expect(bands[3]).toMatchObject({ fromPerMs: 2, toPerMs: Number.POSITIVE_INFINITY, ratioP50: 2 });
  });

  it('reads p50 and p90 over the runs of a band', () => {
    const runs = Array.from({ length: 10 }, (_, i) => ({ startMs: i * 100, durationMs: 10 + i, expectedDurationMs: 10 }));
    const [quiet] = slowdownByArrivals(runs, []);
    expect(quiet!.numRuns).toBe(10);
    expect(quiet!.ratioP50).toBeCloseTo(1.5);
    expect(quiet!.ratioP90).toBeCloseTo(1.9);
  });
});

describe('runs against their predictions, by how much another worker ran meanwhile', () => {
  it("bands each run by the share of it another worker's runs overlapped", () => {
    const bands = slowdownByOverlap([
      { worker: 'a', startMs: 0, durationMs: 10, expectedDurationMs: 10 }, // b runs [100, 120): none
      { worker: 'a', startMs: 95, durationMs: 10, expectedDurationMs: 5 }, // [100, 105) of [95, 105): half
      { worker: 'b', startMs: 100, durationMs: 20, expectedDurationMs: 10 }, // a's [100, 105) and [110, 130): 15 of 20
      { worker: 'a', startMs: 110, durationMs: 20, expectedDurationMs: 16 }, // b's [110, 120) and [120, 140): all
      { worker: 'b', startMs: 120, durationMs: 20, expectedDurationMs: 10 }, // a's [120, 130): half
      { worker: 'a', startMs: 200, durationMs: 0, expectedDurationMs: 5 }, // not measured: left out
      { startMs: 300, durationMs: 10, expectedDurationMs: 5 }, // no worker: left out
    ]);
    expect(bands.map((b) => b.numRuns)).toEqual([1, 0, 3, 1]);
    expect(bands[0]).toMatchObject({ fromShare: 0, toShare: 0.05, ratioP50: 1, over1p5Pct: 0 });
    expect(bands[1]!.ratioP50).toBeNaN();
    // ratios 2 (a at 95), 2 (b at 100), 2 (b at 120)
    expect(bands[2]).toMatchObject({ fromShare: 0.5, toShare: 0.95, ratioP50: 2, over1p5Pct: 100 });
    expect(bands[3]).toMatchObject({ fromShare: 0.95, ratioP50: 1.25, over1p5Pct: 0 });
  });

  it('with three workers, counts a run overlapped twice over as wholly overlapped', () => {
    const bands = slowdownByOverlap([
      { worker: 'a', startMs: 0, durationMs: 10, expectedDurationMs: 10 },
      { worker: 'b', startMs: 0, durationMs: 6, expectedDurationMs: 6 },
      { worker: 'c', startMs: 4, durationMs: 6, expectedDurationMs: 6 },
    ]);
    // a: 6 + 6 of 10 (capped at all of it); b: 6 of 6 by a, 2 by c; c: 6 by a, 2 by b
    expect(bands.map((b) => b.numRuns)).toEqual([0, 0, 0, 3]);
  });
});
