import { describe, expect, it } from 'vitest';
import { loadEstimateNs, modelSpecFromEntry } from '../../controller/model-spec.js';
import { loadModelEntry, runnableBatchSizes } from '../../shared/model-manifest.js';

const entry = loadModelEntry('models', 'fmnist-resnet');

describe('exact batches', () => {
  it('plan every size up to the largest profiled one for a dynamic batch dimension', () => {
    expect(entry.manifest.batchSizes).toEqual([1, 2, 4, 8, 16]);
    expect(modelSpecFromEntry(entry).batchSizes).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(modelSpecFromEntry(entry, 'compact', true).batchSizes).toHaveLength(16);
  });

  it('pad to the profiled sizes when turned off', () => {
    expect(modelSpecFromEntry(entry, 'off', false).batchSizes).toEqual([1, 2, 4, 8, 16]);
  });

  it('never apply to a model whose batch dimension is fixed', () => {
    const fixed = { batchSizes: [1, 4], inputs: [{ name: 'x', dtype: 'float32' as const, shape: [4, 3] }] };
    expect(runnableBatchSizes(fixed)).toEqual([1, 4]);
    const mixed = {
      batchSizes: [1, 4],
      inputs: [
        { name: 'x', dtype: 'float32' as const, shape: [-1, 3] },
        { name: 'y', dtype: 'float32' as const, shape: [4, 3] },
      ],
    };
    expect(runnableBatchSizes(mixed)).toEqual([1, 4]);
    expect(runnableBatchSizes({ ...fixed, inputs: [{ name: 'x', dtype: 'float32' as const, shape: [-1, 3] }] })).toEqual([1, 2, 3, 4]);
  });
});

describe('early-exit monitoring of a package', () => {
  it('starts compact mode fully monitored, release at the 10 % sample', () => {
    expect(modelSpecFromEntry(entry, 'compact').earlyExit!.monitorFraction).toBe(1);
    expect(modelSpecFromEntry(entry, 'release').earlyExit!.monitorFraction).toBe(0.1);
  });
});

describe('the LOAD duration prior', () => {
  it('grows with the profiled compute of every size a LOAD will profile', () => {
    const flat = loadEstimateNs({ '1': 1, '16': 16 }, [1, 2, 4, 8, 16]);
    expect(flat).toBeCloseTo(2e9 + 6 * (1 + 2 + 4 + 8 + 16) * 1e6, -3);
    const small = modelSpecFromEntry(loadModelEntry('models', 'fmnist-resnet')).loadEstimateNs!;
    const real = modelSpecFromEntry(loadModelEntry('models', 'fmnist-resnet-112')).loadEstimateNs!;
    expect(real / small).toBeGreaterThan(2); // a real-size LOAD must not be given up on as a small one would be
  });

  it("counts only the sizes a worker times: a slow model's sizes between powers of two are interpolated, not run", () => {
    const sizes = Array.from({ length: 16 }, (_, i) => i + 1);
    expect(loadEstimateNs({ '1': 110, '16': 1760 }, sizes)).toBeCloseTo(2e9 + 6 * (110 + 220 + 440 + 880 + 1760) * 1e6, -3);
    expect(loadEstimateNs({ '1': 1, '16': 16 }, sizes)).toBeCloseTo(2e9 + 6 * 136 * 1e6, -3);
  });
});
