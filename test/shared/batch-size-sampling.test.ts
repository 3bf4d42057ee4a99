import { describe, expect, it } from 'vitest';
import { anchorBatchSizes, interpolateTiming, timedBatchSizes, tooSlowToTime } from '../../shared/batch-size-sampling.js';

describe('which batch sizes a LOAD times', () => {
  it('always times the powers of two, the smallest and the largest', () => {
    expect(anchorBatchSizes(Array.from({ length: 16 }, (_, i) => i + 1))).toEqual([1, 2, 4, 8, 16]);
    expect(anchorBatchSizes([3, 5, 6, 12])).toEqual([3, 12]);
    expect(anchorBatchSizes([12, 2, 7, 2])).toEqual([2, 12]);
    expect(anchorBatchSizes([])).toEqual([]);
  });

  it('interpolates a size linearly between the nearest timed sizes', () => {
    const timed = new Map([
      [4, { durationNs: 400, p99DurationNs: 500 }],
      [8, { durationNs: 800, p99DurationNs: 1300 }],
      [1, { durationNs: 100, p99DurationNs: 100 }],
    ]);
    expect(interpolateTiming(6, timed)).toEqual({ durationNs: 600, p99DurationNs: 900 });
    expect(interpolateTiming(2, timed)).toEqual({ durationNs: 200, p99DurationNs: 233 });
    expect(interpolateTiming(8, timed)).toEqual({ durationNs: 800, p99DurationNs: 1300 });
    // outside the timed range: the nearest one
    expect(interpolateTiming(16, timed)).toEqual({ durationNs: 800, p99DurationNs: 1300 });
    expect(() => interpolateTiming(3, new Map())).toThrow(/no timed batch size/);
  });

  it('interpolates only sizes whose minimum runs would overrun the per-size cap', () => {
    expect(tooSlowToTime(5e6, 3, 300e6)).toBe(false); // a 5 ms run: timed
    expect(tooSlowToTime(100e6, 3, 300e6)).toBe(false);
    expect(tooSlowToTime(101e6, 3, 300e6)).toBe(true); // a BERT-base batch: interpolated
  });
});

describe('the sizes a LOAD times', () => {
  it('are every size of a quick model, and only the anchors of a slow one', () => {
    const sizes = Array.from({ length: 16 }, (_, i) => i + 1);
    expect(timedBatchSizes(sizes, (b) => b * 2e6)).toEqual(sizes); // 2 ms a sample
    expect(timedBatchSizes(sizes, (b) => b * 110e6)).toEqual([1, 2, 4, 8, 16]); // BERT-base at 128 tokens
    expect(timedBatchSizes(sizes, (b) => b * 20e6)).toEqual([1, 2, 3, 4, 5, 8, 16]); // runs up to 100 ms are timed
  });
});
