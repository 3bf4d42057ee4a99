import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../prepare/dataset.js';
import { fitSamples } from '../../prepare/sample-layout.js';

/** Two samples whose value says where it sits: 1000·n + 100·c + 10·y + x, stored [C,H,W]. */
function chwImages(c: number, h: number, w: number): Dataset {
  const inputs = new Float32Array(2 * c * h * w);
  for (let n = 0; n < 2; n++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) inputs[((n * c + ch) * h + y) * w + x] = 1000 * n + 100 * ch + 10 * y + x;
  return { name: 'd', numSamples: 2, sampleShape: [c, h, w], inputs };
}

describe('fitting samples to the input', () => {
  it('keeps the same shape, and reshapes when only unit axes differ', () => {
    const d: Dataset = { name: 'd', numSamples: 1, sampleShape: [28, 28], inputs: new Float32Array(784) };
    expect(fitSamples(d, [28, 28])).toEqual({ how: 'same' });
    expect(fitSamples(d, [1, 28, 28])).toEqual({ how: 'unit axes' });
    expect(d.sampleShape).toEqual([1, 28, 28]);
    expect(fitSamples(d, [28, 28, 1])).toEqual({ how: 'unit axes' });
  });

  it('transposes images between channels-first and channels-last, every sample', () => {
    const d = chwImages(3, 4, 5);
    expect(fitSamples(d, [4, 5, 3])).toEqual({ how: 'transposed' });
    expect(d.sampleShape).toEqual([4, 5, 3]);
    const v = d.inputs as Float32Array;
    for (let n = 0; n < 2; n++)
      for (let y = 0; y < 4; y++)
        for (let x = 0; x < 5; x++) for (let c = 0; c < 3; c++) expect(v[n * 60 + (y * 5 + x) * 3 + c]).toBe(1000 * n + 100 * c + 10 * y + x);
    // and back
    expect(fitSamples(d, [3, 4, 5])).toEqual({ how: 'transposed' });
    expect(Array.from(d.inputs as Float32Array)).toEqual(Array.from(chwImages(3, 4, 5).inputs as Float32Array));
  });

  it('refuses what is not the same image: other sizes, other channel counts, other element counts', () => {
    expect(fitSamples(chwImages(3, 4, 5), [5, 4, 3])).toBeUndefined();
    expect(fitSamples(chwImages(3, 4, 5), [4, 5, 1])).toBeUndefined();
    expect(fitSamples(chwImages(3, 4, 5), [60])).toBeUndefined();
  });
});
