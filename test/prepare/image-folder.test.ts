import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { imageLayoutOf } from '../../prepare/image-folder.js';
import { loadDataset } from '../../prepare/dataset.js';
import { DEFAULT_PREPARE_OPTIONS, preparePackage } from '../../prepare/prepare-package.js';

const scratch = mkdtempSync(join(tmpdir(), 'escapement-images-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A PNG whose pixel (x, y) is rgb(x, y, c) · step. */
function png(width: number, height: number, fill: (x: number, y: number) => [number, number, number]): Buffer {
  const image = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = fill(x, y);
      image.data.set([r, g, b, 255], (y * width + x) * 4);
    }
  return PNG.sync.write(image);
}

describe('image folders', () => {
  it('read an input shape as channels first, channels last, or grey', () => {
    expect(imageLayoutOf([1, 28, 28])).toEqual({ channels: 1, height: 28, width: 28, channelsLast: false });
    expect(imageLayoutOf([224, 224, 3])).toEqual({ channels: 3, height: 224, width: 224, channelsLast: true });
    expect(imageLayoutOf([28, 28])).toEqual({ channels: 1, height: 28, width: 28, channelsLast: true });
    expect(imageLayoutOf([4, 4, 3])).toEqual({ channels: 3, height: 4, width: 4, channelsLast: true });
    expect(imageLayoutOf([16, 9, 9])).toBeUndefined();
    expect(imageLayoutOf([-1, 28, 28])).toBeUndefined();
  });

  it('load class folders as labels, converted, resized and laid out as the input wants, in a shuffled order', () => {
    const dir = join(scratch, 'colours');
    for (const [k, cls] of ['blue', 'red'].entries()) {
      mkdirSync(join(dir, cls), { recursive: true });
      for (let i = 0; i < 6; i++)
        writeFileSync(
          join(dir, cls, `${i}.png`),
          png(4, 4, (x, y) => (k === 0 ? [10 * x, 10 * y, 200] : [200, 10 * x, 10 * y])),
        );
    }
    // one JPEG of twice the size, to be resized (and a file that is not an image, ignored)
    const big = { width: 8, height: 8, data: Buffer.alloc(8 * 8 * 4, 128) };
    writeFileSync(join(dir, 'red', 'big.jpg'), jpeg.encode(big, 100).data);
    writeFileSync(join(dir, 'red', 'notes.txt'), 'not an image');
    const chw = loadDataset(dir, { imageShape: [3, 4, 4] });
    expect(chw.numSamples).toBe(13);
    expect(chw.sampleShape).toEqual([3, 4, 4]);
    expect(new Set(chw.labels)).toEqual(new Set([0, 1])); // blue = 0, red = 1: sorted folder names
    expect(new Set(chw.labels!.subarray(0, 6)).size).toBe(2); // shuffled: both classes early
    const blue = chw.labels!.indexOf(0);
    const pixel = (d: typeof chw, i: number, c: number, y: number, x: number, last: boolean) =>
      (d.inputs as Float32Array)[i * 48 + (last ? (y * 4 + x) * 3 + c : (c * 4 + y) * 4 + x)]!;
    expect([0, 1, 2].map((c) => pixel(chw, blue, c, 2, 3, false))).toEqual([30, 20, 200]);
    const hwc = loadDataset(dir, { imageShape: [4, 4, 3] });
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expect(pixel(hwc, blue, c, y, x, true)).toBe(pixel(chw, blue, c, y, x, false));
    const resized = chw.labels!.findIndex((_, i) => Math.abs(pixel(chw, i, 0, 0, 0, false) - 128) < 3 && Math.abs(pixel(chw, i, 2, 3, 3, false) - 128) < 3);
    expect(resized).toBeGreaterThanOrEqual(0); // the 8x8 grey JPEG, now 4x4
    const grey = loadDataset(dir, { imageShape: [1, 4, 4] });
    expect((grey.inputs as Float32Array)[blue * 16 + 2 * 4 + 3]).toBeCloseTo(0.299 * 30 + 0.587 * 20 + 0.114 * 200, 3);
  });

  it('refuses what it cannot read, naming the file or the shape', () => {
    const dir = join(scratch, 'broken');
    mkdirSync(join(dir, 'a'), { recursive: true });
    writeFileSync(join(dir, 'a', 'x.png'), Buffer.from('definitely not a png'));
    expect(() => loadDataset(dir, { imageShape: [1, 4, 4] })).toThrow(/x\.png: not a readable PNG image/);
    expect(() => loadDataset(dir, { imageShape: [10] })).toThrow(/not an image/);
    expect(() => loadDataset(dir)).toThrow(/needs the model's input shape/);
  });

  it('prepare makes a package from a folder of PNG digits, one folder per class', async () => {
    const digits = loadDataset('datasets/mnist-digits');
    const dir = join(scratch, 'digits');
    const pixels = digits.inputs as Float32Array;
    for (let i = 0; i < 400; i++) {
      const label = digits.labels![i]!;
      mkdirSync(join(dir, `class-${label}`), { recursive: true });
      writeFileSync(
        join(dir, `class-${label}`, `${String(i).padStart(4, '0')}.png`),
        png(28, 28, (x, y) => {
          const v = pixels[i * 784 + y * 28 + x]!;
          return [v, v, v];
        }),
      );
    }
    const report = await preparePackage({
      ...DEFAULT_PREPARE_OPTIONS,
      modelPath: 'zoo/mnist-cnn/original.onnx',
      datasetPath: dir,
      outDir: join(scratch, 'digits-from-png'),
      name: 'digits-from-png',
      labels: 'truth',
      bootstrapFraction: 1,
      profile: { ...DEFAULT_PREPARE_OPTIONS.profile, numRuns: 3, numWarmup: 1, maxMsPerSize: 30 },
      onProgress: () => undefined,
    });
    expect(report.manifest.earlyExit!.dataset.name).toBe('digits');
    expect(report.verification.predictionAgreement).toBe(1);
    // the digits are the real ones, read back through PNG: a ramp trained on 40 of them is far above chance (0.1)
    const accuracies = report.ramps.map((r) => r.validationAccuracy ?? 0);
    expect(Math.max(...accuracies)).toBeGreaterThan(0.5);
  });
});
