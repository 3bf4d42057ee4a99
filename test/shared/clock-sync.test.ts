import { describe, expect, it } from 'vitest';
import { estimateOffset, type PingSample } from '../../shared/clock-sync.js';

/** Pings between a peer whose clock is `offsetNs` behind the controller, with given one-way delays. */
function pings(offsetNs: number, delays: [number, number][]): PingSample[] {
  let peerNs = 1_000_000;
  return delays.map(([upNs, downNs]) => {
    const t0Ns = peerNs;
    const t1Ns = t0Ns + offsetNs + upNs;
    const t2Ns = t1Ns + 10_000;
    const t3Ns = t2Ns - offsetNs + downNs;
    peerNs = t3Ns + 50_000;
    return { t0Ns, t1Ns, t2Ns, t3Ns };
  });
}

describe('estimateOffset', () => {
  it('recovers the offset exactly with symmetric delays', () => {
    expect(
      estimateOffset(
        pings(123_456_000, [
          [50_000, 50_000],
          [70_000, 70_000],
        ]),
      ).offsetNs,
    ).toBe(123_456_000);
  });

  it('takes the median so one asymmetric ping does not skew the estimate', () => {
    const samples = pings(-5_000_000, [
      [50_000, 50_000],
      [60_000, 60_000],
      [1_500_000, 40_000],
      [55_000, 55_000],
      [52_000, 52_000],
    ]);
    const estimate = estimateOffset(samples);
    expect(Math.abs(estimate.offsetNs - -5_000_000)).toBeLessThan(1_000);
    expect(estimate.minRttNs).toBe(100_000);
    expect(estimate.numSamples).toBe(5);
  });

  it('refuses an empty sample set', () => {
    expect(() => estimateOffset([])).toThrow(RangeError);
  });
});
