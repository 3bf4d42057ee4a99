import { describe, expect, it } from 'vitest';
import { SegmentCosts } from '../../controller/segment-costs.js';

const US = 1_000;
/** A segment costing `fixedUs` + `perRowUs` per row at every profiled batch size. */
const line = (fixedUs: number, perRowUs: number) => Object.fromEntries([1, 2, 4, 8, 16].map((b) => [b, (fixedUs + perRowUs * b) * US]));

describe('SegmentCosts', () => {
  it('starts from the package profile', () => {
    const costs = new SegmentCosts([line(50, 300), line(0, 200)]);
    expect(costs.segmentNs(0, 4)).toBeCloseTo((50 + 1200) * US, 0);
    expect(costs.segmentNs(1, 4)).toBeCloseTo(800 * US, 0);
    expect(costs.chainNs([16, 4])).toBeCloseTo((50 + 4800 + 800) * US, 0);
    expect(costs.segmentNs(0, 0)).toBe(0);
  });

  it('learns the line the workers measure, whatever the profile said', () => {
    const costs = new SegmentCosts([line(50, 300)]);
    // This host: 200 us fixed, 500 us per row
    for (let i = 0; i < 600; i++) {
      const rows = 1 + (i % 16);
      costs.observe(0, rows, (200 + 500 * rows) * US);
    }
    const fitted = costs.lines()[0]!;
    expect(fitted.fixedNs / US).toBeCloseTo(200, -1);
    expect(fitted.perRowNs / US).toBeCloseTo(500, -1);
  });

  it('predicts runs that all had the same rows, and still scales with rows as the profile does', () => {
    const costs = new SegmentCosts([line(100, 100)]);
    for (let i = 0; i < 600; i++) costs.observe(0, 8, 1800 * US); // twice the profile's 900 us at 8 rows
    expect(costs.segmentNs(0, 8) / US).toBeCloseTo(1800, -2);
    expect(costs.lines()[0]!.perRowNs).toBeGreaterThan(0);
    expect(costs.segmentNs(0, 4)).toBeLessThan(costs.segmentNs(0, 8));
  });

  it('without a profile spread either, splits as the profile line does, rescaled', () => {
    const costs = new SegmentCosts([{ 8: 900 * US }]);
    for (let i = 0; i < 2000; i++) costs.observe(0, 8, 1800 * US);
    expect(costs.segmentNs(0, 8) / US).toBeCloseTo(1800, 0);
    expect(costs.segmentNs(0, 4) / US).toBeCloseTo(900, 0); // proportional, as the one-point prior
  });

  it('never predicts a negative cost from noisy timings', () => {
    const costs = new SegmentCosts([line(0, 100)]);
    for (let i = 0; i < 200; i++) costs.observe(0, 1 + (i % 16), i % 2 === 0 ? 2000 * US : 100 * US);
    const fitted = costs.lines()[0]!;
    expect(fitted.fixedNs).toBeGreaterThanOrEqual(0);
    expect(fitted.perRowNs).toBeGreaterThanOrEqual(0);
  });
});
