import { describe, expect, it } from 'vitest';
import { interpolateMs, mergeCeiling } from '../../bench/merge-ceiling.js';

describe('merging survivors: the ceiling over compact mode', () => {
  it("interpolates a segment's time between measured sizes, and per row outside them", () => {
    const table = { 2: 4, 4: 6, 8: 16 };
    expect(interpolateMs(table, 3)).toBe(5);
    expect(interpolateMs(table, 1)).toBe(2);
    expect(interpolateMs(table, 16)).toBe(32);
    expect(interpolateMs(table, 0)).toBe(0);
  });

  it('gains nothing where a segment costs the same per row at any batch size', () => {
    const linear = (perRow: number) => ({ 1: perRow, 2: 2 * perRow, 4: 4 * perRow, 8: 8 * perRow, 16: 16 * perRow });
    const c = mergeCeiling({ segmentMs: [linear(1), linear(2), linear(3)], exitFractions: [0.3, 0.4], monitorFraction: 0.1, batchSize: 16 });
    expect(c.gain).toBeCloseTo(1, 9);
    // rows alive: all, then 16 * (1 - 0.9 * 0.3), then 16 * (1 - 0.9 * 0.7)
    expect(c.aliveRows.map((r) => +r.toFixed(2))).toEqual([16, 11.68, 5.92]);
  });

  it('gains where small batches cost more per row (a fixed cost per run, as on a GPU)', () => {
    const fixed = (fixedMs: number, perRow: number) => Object.fromEntries([1, 2, 4, 8, 16].map((b) => [b, fixedMs + perRow * b])) as Record<number, number>;
    const c = mergeCeiling({ segmentMs: [fixed(1, 0.1), fixed(1, 0.1)], exitFractions: [0.5], monitorFraction: 0, batchSize: 16 });
    // compact: (1 + 1.6) + (1 + 0.8) = 4.4; merged: 2.6 + 8 / 16 * 2.6 = 3.9
    expect(c.compactMs).toBeCloseTo(4.4, 9);
    expect(c.mergedMs).toBeCloseTo(3.9, 9);
    expect(c.gain).toBeCloseTo(4.4 / 3.9, 9);
    expect(() => mergeCeiling({ segmentMs: [fixed(1, 0.1)], exitFractions: [0.5], monitorFraction: 0, batchSize: 16 })).toThrow(/need 0 exit fractions/);
  });
});
