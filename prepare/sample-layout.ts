/**
 * Fitting a dataset's samples to a model input's per-sample shape: the same shape; the same
 * values with unit axes added or dropped ([28,28] for [1,28,28] or [28,28,1]); or the same image
 * in the other channel order ([3,32,32] for [32,32,3] and back), transposed once here. Anything
 * else is refused by the caller with both shapes.
 */
import type { Dataset } from './dataset.js';
import { imageLayoutOf } from './image-folder.js';

/** Fits `dataset` to `expected` in place; returns how (for the user), or undefined if it cannot. */
export function fitSamples(dataset: Dataset, expected: readonly number[]): { how: 'same' | 'unit axes' | 'transposed' } | undefined {
  const have = dataset.sampleShape;
  const size = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
  if (expected.length === have.length && expected.every((d, i) => d === have[i])) return { how: 'same' };
  const nonUnit = (dims: readonly number[]) => dims.filter((d) => d !== 1).join();
  if (size(expected) === size(have) && nonUnit(expected) === nonUnit(have)) {
    dataset.sampleShape = [...expected];
    return { how: 'unit axes' };
  }
  const from = have.length === 3 ? imageLayoutOf(have) : undefined;
  const to = expected.length === 3 ? imageLayoutOf(expected) : undefined;
  if (!from || !to || !(dataset.inputs instanceof Float32Array)) return undefined;
  if (from.channelsLast === to.channelsLast || from.channels !== to.channels || from.height !== to.height || from.width !== to.width) return undefined;
  const { channels: c, height: h, width: w } = from;
  const inputs = dataset.inputs;
  const sample = new Float32Array(c * h * w);
  for (let n = 0; n < dataset.numSamples; n++) {
    const at = inputs.subarray(n * sample.length, (n + 1) * sample.length);
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const chw = (ch * h + y) * w + x;
          const hwc = (y * w + x) * c + ch;
          sample[to.channelsLast ? hwc : chw] = at[from.channelsLast ? hwc : chw]!;
        }
      }
    }
    at.set(sample);
  }
  dataset.sampleShape = [...expected];
  return { how: 'transposed' };
}
