import { describe, expect, it } from 'vitest';
import { slowdownByArrivals } from '../../bench/run-slowdown.js';

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
