/** The demo on another bundled model offers it the same share of capacity as 100x gives fmnist-resnet. */
import { describe, expect, it } from 'vitest';
import { profiledCapacityRps } from '../../loadgen/profiled-capacity.js';
import { demoSettings } from '../../cli/demo-settings.js';
import { measureHostSpeed, sloForHost, stretchedSloMs } from '../../loadgen/host-speed.js';

describe('demo settings', () => {
  it('replays the reference model at 100x on its own dataset', () => {
    expect(demoSettings('models', 'fmnist-resnet')).toEqual({ timeScale: 100, dataset: 'datasets/fashion-mnist-test' });
  });

  it('slows the trace down for the real-size model by the ratio of profiled capacities', () => {
    const ratio = profiledCapacityRps('models', 'fmnist-resnet-112') / profiledCapacityRps('models', 'fmnist-resnet');
    expect(ratio).toBeLessThan(0.2); // ~16x the compute per image
    const settings = demoSettings('models', 'fmnist-resnet-112');
    expect(settings.dataset).toBe('datasets/fashion-mnist-test');
    expect(settings.timeScale).toBeCloseTo(100 * ratio, 0);
  });

  it('plays the trace slower on a host slower than the package profile, never faster on a faster one', () => {
    const speed = (ratio: number) => ({ ratio, batchSize: 16, profiledMs: 16, measuredMs: 16 / ratio });
    expect(demoSettings('models', 'fmnist-resnet', speed(0.4)).timeScale).toBe(40);
    expect(demoSettings('models', 'fmnist-resnet', speed(1.7)).timeScale).toBe(100);
    const real = demoSettings('models', 'fmnist-resnet-112').timeScale;
    expect(demoSettings('models', 'fmnist-resnet-112', speed(0.5)).timeScale).toBeCloseTo(real / 2, 0);
  });

  it("measures this host's speed on the package's largest profiled batch (images only)", async () => {
    const speed = (await measureHostSpeed('models', 'fmnist-resnet'))!;
    expect(speed.batchSize).toBe(16);
    expect(speed.measuredMs).toBeGreaterThan(0);
    expect(speed.ratio).toBeCloseTo(speed.profiledMs / speed.measuredMs, 9);
    expect(await measureHostSpeed('models', 'spam-transformer')).toBeUndefined(); // token inputs
  });

  it("stretches a benchmark's SLO by the host's slowdown, rounded up to 10 ms, never tightening it", async () => {
    const speed = (ratio: number) => ({ ratio, batchSize: 16, profiledMs: 16, measuredMs: 16 / ratio });
    expect(stretchedSloMs(40, speed(0.38))).toBe(110); // 105.3 ms, rounded up
    expect(stretchedSloMs(40, speed(0.5))).toBe(80);
    expect(stretchedSloMs(40, speed(0.9))).toBe(40); // within the profile's own spread: the same host
    expect(stretchedSloMs(40, speed(1.7))).toBe(40);
    expect(stretchedSloMs(40, undefined)).toBe(40);
    expect(await sloForHost(40, undefined, 'models', 'fmnist-resnet')).toBe(40);
    expect(await sloForHost(40, '75', 'models', 'fmnist-resnet')).toBe(75);
    await expect(sloForHost(40, 'fast', 'models', 'fmnist-resnet')).rejects.toThrow(/number of ms or 'host'/);
    await expect(sloForHost(40, '-5', 'models', 'fmnist-resnet')).rejects.toThrow(/number of ms or 'host'/);
  });

  it('refuses a package without ramps, naming what to do', () => {
    expect(() => profiledCapacityRps('models', 'mnist-cnn')).not.toThrow(); // mnist-cnn has ramps too
    expect(() => demoSettings('models', 'no-such-model')).toThrow();
  });
});
