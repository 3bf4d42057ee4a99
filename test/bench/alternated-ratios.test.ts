import { describe, expect, it } from 'vitest';
import { alternatedRatios } from '../../bench/alternated-ratios.js';

describe('throughput ratios read within alternated rounds', () => {
  it('takes each ratio within its round, so a host that slows between rounds does not move it', () => {
    // the host ran at full speed in round 1 and at 80 % in round 2; release stays 0.98x within each
    const rounds = [
      { vanilla: 700, release: 686, compact: 840 },
      { vanilla: 560, release: 548.8, compact: 700 },
      { vanilla: 690, release: 680, compact: 800 },
    ];
    const ratios = alternatedRatios(rounds, 'vanilla');
    expect(Object.keys(ratios)).toEqual(['release', 'compact']);
    expect(ratios.release!.perRound.map((r) => Number(r.toFixed(3)))).toEqual([0.98, 0.98, 0.986]);
    expect(ratios.release!.median).toBeCloseTo(0.98);
    expect(ratios.compact!.median).toBeCloseTo(1.2);
    // the same figures compared across rounds (vanilla of round 1, release of round 2) would say 0.78x
    expect(rounds[1]!.release / rounds[0]!.vanilla).toBeCloseTo(0.784, 3);
  });

  it('averages the middle two of an even count, and refuses no rounds', () => {
    const ratios = alternatedRatios(
      [
        { a: 100, b: 90 },
        { a: 100, b: 100 },
      ],
      'a',
    );
    expect(ratios.b!.median).toBeCloseTo(0.95);
    expect(() => alternatedRatios([], 'a')).toThrow(/at least one round/);
  });
});
