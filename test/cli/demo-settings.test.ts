/** The demo on another bundled model offers it the same share of capacity as 100x gives fmnist-resnet. */
import { describe, expect, it } from 'vitest';
import { profiledCapacityRps } from '../../loadgen/profiled-capacity.js';
import { demoSettings } from '../../cli/demo-settings.js';

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

  it('refuses a package without ramps, naming what to do', () => {
    expect(() => profiledCapacityRps('models', 'mnist-cnn')).not.toThrow(); // mnist-cnn has ramps too
    expect(() => demoSettings('models', 'no-such-model')).toThrow();
  });
});
