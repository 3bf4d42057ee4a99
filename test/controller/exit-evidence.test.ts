import { describe, expect, it } from 'vitest';
import { binomialQuantile, ExitEvidence, wilsonUpper } from '../../controller/exit-evidence.js';

const S = 1e9;

/** A batch of `rows` request rows of which `answered[i]` are answered at ramp i. */
function batch(rows: number, answered: number[]) {
  const reached: number[] = [];
  let left = rows;
  for (const a of answered) {
    reached.push(left);
    left -= a;
  }
  return { reached, answered };
}

describe('the statistics', () => {
  it('reads binomial quantiles exactly', () => {
    expect(binomialQuantile(16, 0.5, 0.5)).toBe(8);
    expect(binomialQuantile(16, 0, 0.95)).toBe(0);
    expect(binomialQuantile(16, 1, 0.95)).toBe(16);
    // P(Bin(16, 0.5) ≤ 11) = 0.9616 ≥ 0.95 > P(≤ 10) = 0.8949
    expect(binomialQuantile(16, 0.5, 0.95)).toBe(11);
  });

  it('bounds a proportion from above, at 1 without trials', () => {
    expect(wilsonUpper(0, 0, 1.645)).toBe(1);
    expect(wilsonUpper(50, 100, 1.645)).toBeGreaterThan(0.5);
    expect(wilsonUpper(50, 100, 1.645)).toBeLessThan(0.6);
    expect(wilsonUpper(500, 1000, 1.645)).toBeLessThan(wilsonUpper(50, 100, 1.645));
  });
});

describe('ExitEvidence', () => {
  it('assumes nobody leaves until it has seen enough rows', () => {
    const evidence = new ExitEvidence(2, { minRows: 64 });
    for (let i = 0; i < 3; i++) evidence.observe(batch(16, [8, 4]), i * S);
    const estimate = evidence.survivors(16, 0);
    expect(estimate.informed).toBe(false);
    expect(estimate.bound).toEqual([16, 16, 16]);
  });

  it('bounds the rows alive at a quantile between the expected count and the whole batch', () => {
    const evidence = new ExitEvidence(2, { minRows: 64 });
    for (let i = 0; i < 40; i++) evidence.observe(batch(16, [8, 4]), i * 0.01 * S);
    const estimate = evidence.survivors(16, 0);
    expect(estimate.informed).toBe(true);
    expect(estimate.expected[1]).toBeCloseTo(8, 6);
    expect(estimate.expected[2]).toBeCloseTo(4, 6);
    // 640 rows of evidence: survival 0.5 bounded near 0.53, then the binomial's p95 of 16 rows
    expect(estimate.bound[1]).toBeGreaterThan(8);
    expect(estimate.bound[1]).toBeLessThanOrEqual(12);
    expect(estimate.bound[2]).toBeGreaterThan(4);
    expect(estimate.bound[2]).toBeLessThan(estimate.bound[1]!);
  });

  it('counts the monitoring sample of answered rows as still running', () => {
    const evidence = new ExitEvidence(1, { minRows: 16 });
    for (let i = 0; i < 20; i++) evidence.observe(batch(16, [16]), i * S * 0.01);
    expect(evidence.survivors(16, 0).expected[1]).toBe(0);
    expect(evidence.survivors(16, 0.1).expected[1]).toBeCloseTo(1.6, 6);
    expect(evidence.survivors(16, 1).bound[1]).toBe(16);
  });

  it('starts over from one batch when the exits collapse, so the bound is back near "nobody leaves"', () => {
    const evidence = new ExitEvidence(1, { minRows: 16 });
    for (let i = 0; i < 60; i++) evidence.observe(batch(16, [12]), i * S * 0.01);
    expect(evidence.survivors(16, 0).bound[1]).toBeLessThan(8);
    evidence.observe(batch(16, [0]), S); // a drift: nobody exits any more
    expect(evidence.collapses).toBe(1);
    // 16 rows of evidence, none answered: survival's upper bound is 1
    expect(evidence.survivors(16, 0).bound[1]).toBe(16);
  });

  it('does not take an ordinary batch for a collapse', () => {
    const evidence = new ExitEvidence(1, { minRows: 16 });
    for (let i = 0; i < 60; i++) evidence.observe(batch(16, [8]), i * S * 0.01);
    for (let i = 0; i < 60; i++) evidence.observe(batch(16, [5 + (i % 7)]), (1 + i * 0.01) * S);
    expect(evidence.collapses).toBe(0);
  });

  it('drops batches older than its age limit', () => {
    const evidence = new ExitEvidence(1, { minRows: 64, maxAgeNs: 10 * S });
    for (let i = 0; i < 10; i++) evidence.observe(batch(16, [8]), i * 0.1 * S);
    expect(evidence.survivors(16, 0).informed).toBe(true);
    evidence.observe(batch(16, [8]), 30 * S);
    expect(evidence.evidenceRows).toBe(16);
    expect(evidence.survivors(16, 0).informed).toBe(false);
  });

  it('starts new thresholds from the monitor estimate, weighted as a bounded number of rows', () => {
    const evidence = new ExitEvidence(2, { minRows: 64, maxSeedRows: 128 });
    evidence.reset([0.5, 0.25], 1000);
    expect(evidence.evidenceRows).toBe(128);
    const estimate = evidence.survivors(16, 0);
    expect(estimate.informed).toBe(true);
    expect(estimate.expected[1]).toBeCloseTo(8, 6);
    expect(estimate.expected[2]).toBeCloseTo(4, 6);
    evidence.reset([0.5, 0.25], 10); // too little behind the estimate
    expect(evidence.survivors(16, 0).informed).toBe(false);
  });
});
