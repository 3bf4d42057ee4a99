import { describe, expect, it } from 'vitest';
import { combinePasses, type DriftPass, type VariantResult } from '../../bench/adapt-passes.js';

const variant = (p50Ms: number, windowsBelow99: number, agreement: number, tenths: number[]): VariantResult => ({
  agreement,
  worstWindowAgreement: Math.min(...tenths),
  windowsBelow99,
  numWindows: tenths.length,
  windowsWithinBudgetPct: (100 * (tenths.length - windowsBelow99)) / tenths.length,
  exitFraction: 0.5,
  p50Ms,
  p50RatioVsNoRamps: 0,
  sloAttainment: 1,
  windows: tenths.map((agreement) => ({ agreement, exitFraction: 0.5 })),
});

const pass = (noRampsP50Ms: number, online: VariantResult, changes: string[] = []): DriftPass<'online'> => ({
  drift: 'noise',
  onlineRampChanges: changes,
  noRamps: { p50Ms: noRampsP50Ms, sloAttainment: 1 },
  variants: { online },
});

describe('combinePasses', () => {
  it('averages what the passes measured, counts the tenths below 99 % over all of them, and keeps each pass', () => {
    const forward = pass(4, variant(3, 1, 0.994, [0.995, 0.985]), ['a']);
    const reversed = pass(2, variant(2, 0, 0.998, [0.999, 0.997]));
    const combined = combinePasses([forward, reversed], ['online']);
    const online = combined.variants.online;
    expect(online.p50Ms).toBe(2.5);
    expect(online.p50RatioVsNoRamps).toBeCloseTo(2.5 / 3); // the ratio of the averages, not the average of the ratios (0.875)
    expect(online.windowsBelow99).toBe(1);
    expect(online.numWindows).toBe(4);
    expect(online.windowsWithinBudgetPct).toBe(75);
    expect(online.worstWindowAgreement).toBe(0.985);
    expect(online.agreement).toBeCloseTo(0.996);
    expect(online.windows.map((w) => w.agreement)).toEqual([0.997, 0.991]);
    expect(combined.onlineRampChanges).toEqual(['a']);
    expect(combined.p50MsByPass).toEqual({ 'no ramps': [4, 2], online: [3, 2] });
    expect(() => combinePasses([], ['online'])).toThrow(RangeError);
  });
});
