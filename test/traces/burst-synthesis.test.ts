import { describe, expect, it } from 'vitest';
import { synthesizeBursts } from '../../traces/burst-synthesis.js';
import { loadTrace } from '../../traces/trace-loader.js';
import type { Arrival } from '../../traces/trace.js';

const perWindow = (arrivals: Arrival[], windowMs: number) => {
  const counts = new Map<number, number>();
  for (const a of arrivals) counts.set(Math.floor(a.timeMs / windowMs), (counts.get(Math.floor(a.timeMs / windowMs)) ?? 0) + 1);
  return counts;
};

describe('synthesizeBursts', () => {
  const trace = loadTrace('traces/azure-llm-2023-conv.csv', { seed: 1 }).slice(0, 2_000);

  it('compresses the trace to the asked mean rate, keeping its order and shape', () => {
    const out = synthesizeBursts(trace, { ratePerSec: 500, burstFactor: 1, windowMs: 10, numBursts: 5, seed: 1 });
    expect(out).toHaveLength(trace.length);
    expect(out[0]!.timeMs).toBe(0);
    expect(out.at(-1)!.timeMs).toBeCloseTo(((trace.length - 1) / 500) * 1e3, 6);
    // the same gaps, in proportion
    const ratio = (out[10]!.timeMs - out[5]!.timeMs) / (trace[10]!.timeMs - trace[5]!.timeMs);
    expect((out[1_500]!.timeMs - out[1_000]!.timeMs) / (trace[1_500]!.timeMs - trace[1_000]!.timeMs)).toBeCloseTo(ratio, 6);
  });

  it("multiplies the trace's busiest windows, and only them, by the burst factor", () => {
    const base = synthesizeBursts(trace, { ratePerSec: 500, burstFactor: 1, windowMs: 10, numBursts: 0, seed: 1 });
    const out = synthesizeBursts(trace, { ratePerSec: 500, burstFactor: 4, windowMs: 10, numBursts: 3, seed: 1 });
    const before = perWindow(base, 10);
    const after = perWindow(out, 10);
    const busiest = [...before].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, 3);
    for (const [w, n] of busiest) expect(after.get(w)).toBe(4 * n);
    expect(out.length - base.length).toBe(3 * busiest.reduce((sum, [, n]) => sum + n, 0));
    for (const [w, n] of before) if (!busiest.some(([b]) => b === w)) expect(after.get(w)).toBe(n);
    expect(out.every((a, i) => i === 0 || a.timeMs >= out[i - 1]!.timeMs)).toBe(true);
  });

  it('is reproducible under a seed, and refuses a rate or factor that makes no sense', () => {
    const options = { ratePerSec: 300, burstFactor: 2.5, windowMs: 20, numBursts: 4, seed: 9 };
    expect(synthesizeBursts(trace, options)).toEqual(synthesizeBursts(trace, options));
    expect(() => synthesizeBursts(trace, { ...options, ratePerSec: 0 })).toThrow(RangeError);
    expect(() => synthesizeBursts(trace, { ...options, burstFactor: 0.5 })).toThrow(RangeError);
  });
});
