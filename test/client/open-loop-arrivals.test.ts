import { describe, expect, it } from 'vitest';
import { arrivalOffsetsNs } from '../../loadgen/open-loop.js';

function gapStats(offsets: number[]) {
  const gaps = offsets.slice(1).map((t, i) => t - offsets[i]!);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length);
  return { mean, cv: sd / mean };
}

describe('open-loop arrivals', () => {
  it('makes gamma gaps at the asked mean rate and coefficient of variation, reproducibly', () => {
    for (const cv of [1, 4]) {
      const offsets = arrivalOffsetsNs(200_000, 1000, 'gamma', 7, cv);
      const stats = gapStats(offsets);
      expect(stats.mean / 1e6).toBeCloseTo(1, 1); // 1,000 req/s: 1 ms apart on average
      expect(stats.cv).toBeGreaterThan(0.85 * cv);
      expect(stats.cv).toBeLessThan(1.15 * cv);
    }
    expect(arrivalOffsetsNs(100, 1000, 'gamma', 7, 10)).toEqual(arrivalOffsetsNs(100, 1000, 'gamma', 7, 10));
  });

  it('bursts at CV 10: most requests arrive within a small share of the time', () => {
    const offsets = arrivalOffsetsNs(50_000, 1000, 'gamma', 3, 10);
    const gaps = offsets
      .slice(1)
      .map((t, i) => t - offsets[i]!)
      .sort((a, b) => a - b);
    // half the gaps are far below the mean gap (1 ms)
    expect(gaps[gaps.length >> 1]! / 1e6).toBeLessThan(0.01);
  });
});
