import { describe, expect, it } from 'vitest';
import { sloFor } from '../../loadgen/slo-rule.js';
import { loadModelEntry } from '../../shared/model-manifest.js';

describe('the SLO of a replay', () => {
  const entry = loadModelEntry('models', 'fmnist-resnet');
  const batch1Ms = entry.manifest.earlyExit!.profile.wholeMs['1']!;

  it('is given in ms, or as a multiple of the profiled batch-1 latency, or the command default', () => {
    expect(sloFor(entry, 25, undefined)).toBe(25);
    expect(sloFor(entry, undefined, 3)).toBeCloseTo(3 * batch1Ms, 9);
    expect(sloFor(entry, undefined, undefined)).toBe(50);
    expect(sloFor(entry, undefined, undefined, 40)).toBe(40);
  });

  it('defaults to 10x the batch-1 latency for a real-size model, rounded up to 10 ms, never under the floor', () => {
    const ee = entry.manifest.earlyExit!;
    const heavy = {
      ...entry,
      manifest: { ...entry.manifest, earlyExit: { ...ee, profile: { ...ee.profile, wholeMs: { ...ee.profile.wholeMs, '1': 19.6 } } } },
    };
    expect(sloFor(heavy, undefined, undefined, 40)).toBe(200);
    expect(sloFor(heavy, 30, undefined, 40)).toBe(30);
    expect(batch1Ms * 10).toBeLessThan(40); // fmnist-resnet keeps the floor
  });

  it('needs a profiled package for a factor', () => {
    const { earlyExit: _profile, ...plain } = entry.manifest;
    expect(() => sloFor({ ...entry, manifest: plain }, undefined, 3)).toThrow(/needs a model package with a profile/);
    expect(() => sloFor(undefined, undefined, 3)).toThrow(/needs a model package with a profile/);
  });
});
