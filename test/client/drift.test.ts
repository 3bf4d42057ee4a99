import { describe, expect, it } from 'vitest';
import { addNoise, parseDrift, planDrift } from '../../loadgen/drift.js';
import { windowsOf } from '../../loadgen/replay-report.js';
import type { ReplayRecord } from '../../loadgen/replay.js';

const labels = Int32Array.from({ length: 1000 }, (_, k) => k % 10); // classes in turn

describe('drift workloads', () => {
  it('class-mix: the first half of the run draws from the lower classes, the second from the upper', () => {
    const plan = planDrift(parseDrift('class-mix', 10), 200, labels.length, labels);
    const classes = (from: number, to: number) => new Set(Array.from({ length: to - from }, (_, i) => labels[plan.sampleOf(from + i)]));
    expect([...classes(0, 100)].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...classes(100, 200)].sort()).toEqual([5, 6, 7, 8, 9]);
    expect(plan.sigmaOf(150)).toBe(0);
    // distinct samples while the pool lasts
    expect(new Set(Array.from({ length: 100 }, (_, i) => plan.sampleOf(i))).size).toBe(100);
  });

  it('noise grows linearly over the run; shift jumps at its point', () => {
    const noise = planDrift(parseDrift('noise', 10), 101, 1000);
    expect([noise.sigmaOf(0), noise.sigmaOf(50), noise.sigmaOf(100)]).toEqual([0, 0.2, 0.4]);
    const shift = planDrift(parseDrift('{"kind":"shift","atFraction":0.25,"sigma":0.5}', 10), 100, 1000);
    expect([shift.sigmaOf(24), shift.sigmaOf(25), shift.sigmaOf(99)]).toEqual([0, 0.5, 0.5]);
  });

  it('adds seeded noise within the value range, the same for the same request', () => {
    const a = new Float32Array(784).fill(100);
    const b = new Float32Array(784).fill(100);
    addNoise(a, 0.3, 7, 0, 255);
    addNoise(b, 0.3, 7, 0, 255);
    expect(a).toEqual(b);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThanOrEqual(255);
    const sd = Math.sqrt(a.reduce((s, v) => s + (v - 100) ** 2, 0) / a.length);
    expect(sd).toBeGreaterThan(40); // ~0.3 x 255, less the clamping
    expect(sd).toBeLessThan(90);
  });

  it('refuses a description it cannot follow, saying what it needs', () => {
    expect(() => parseDrift('rain', 10)).toThrow(/neither class-mix, noise, shift nor a JSON description/);
    expect(() => parseDrift('{"kind":"class-mix","phases":[{"untilFraction":1,"classes":[12]}]}', 10)).toThrow(/classes in \[0, 10\)/);
    expect(() => parseDrift('{"kind":"noise","fromSigma":-1,"toSigma":1}', 10)).toThrow(/fromSigma and toSigma/);
  });
});

describe('per-window measures', () => {
  it('cuts a run into windows by scheduled arrival, with exits, agreement and latency of each', () => {
    const record = (i: number, early: boolean, agrees: boolean): ReplayRecord => ({
      index: i,
      requestId: `r${i}`,
      model: 'm',
      sloMs: 40,
      arrivalNs: i * 1e6,
      deadlineNs: i * 1e6 + 40e6,
      completeNs: i * 1e6 + 5e6,
      latencyMs: early ? 2 : 8,
      scheduleLagMs: 0,
      status: 'OK',
      metSlo: true,
      code: 0,
      early,
      agrees,
    });
    // 100 requests over 100 ms: the first half exits and agrees, the second does neither
    const records = Array.from({ length: 100 }, (_, i) => record(i, i < 50, i < 50));
    const windows = windowsOf(records, 0, 4);
    expect(windows.map((w) => w.numRequests)).toEqual([25, 25, 25, 25]);
    expect(windows.map((w) => w.exitFraction)).toEqual([1, 1, 0, 0]);
    expect(windows.map((w) => w.agreement)).toEqual([1, 1, 0, 0]);
    expect(windows.map((w) => w.p50Ms)).toEqual([2, 2, 8, 8]);
  });
});
