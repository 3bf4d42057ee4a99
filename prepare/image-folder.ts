/**
 * Image files as a dataset, laid out as the model's input wants them: a folder of class folders
 * (`cats/001.png`, `dogs/002.jpg`: labels are the class folders in sorted order, as torchvision's
 * ImageFolder numbers them), or a folder of images alone (no labels).
 *
 * Each image is decoded (PNG: pngjs, JPEG: jpeg-js), converted to the model's channels (1:
 * luminance, ITU-R BT.601; 3: RGB; 4: RGBA), resized to its height and width (bilinear) when it
 * differs, and laid out channels-first ([C,H,W]) or channels-last ([H,W,C]) as the input's shape
 * says. Pixels stay in 0–255, as for IDX and NPY datasets.
 *
 * Order: files are read in sorted order and then shuffled with a fixed seed, because prepare
 * trains ramps on the first 10 % of a dataset: in class order that would be one class only.
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { seededRandom } from '../shared/seeded-random.js';
import type { Dataset } from './dataset.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);
/** Channel counts an image input can have. */
const CHANNELS = new Set([1, 3, 4]);
/** Largest image accepted (pixels), so one hostile file cannot exhaust memory. */
const MAX_PIXELS = 64 * 2 ** 20;

export class ImageFolderError extends CodedError {
  override readonly name = 'ImageFolderError';
  readonly code = ErrorCode.DATASET_INVALID;
}

export function isImageFolderError(err: unknown): err is ImageFolderError {
  return err instanceof ImageFolderError;
}

/** How samples are laid out for a model input's per-sample shape. */
export interface ImageLayout {
  channels: number;
  height: number;
  width: number;
  channelsLast: boolean;
}

/**
 * The image layout of a per-sample input shape: [C,H,W] or [H,W,C] with C in {1,3,4}, or [H,W]
 * (grey). Where both ends could be channels ([4,4,3], [3,4,4]) the smaller is; a tie ([3,3,3])
 * reads as channels-first. Undefined: not an image input.
 */
export function imageLayoutOf(sampleShape: readonly number[]): ImageLayout | undefined {
  if (sampleShape.some((d) => !(d > 0))) return undefined;
  if (sampleShape.length === 2) return { channels: 1, height: sampleShape[0]!, width: sampleShape[1]!, channelsLast: true };
  if (sampleShape.length !== 3) return undefined;
  const [a, b, c] = sampleShape as [number, number, number];
  const first = CHANNELS.has(a);
  const last = CHANNELS.has(c);
  if (first && (!last || a <= c)) return { channels: a, height: b, width: c, channelsLast: false };
  if (last) return { channels: c, height: a, width: b, channelsLast: true };
  return undefined;
}

const isImage = (name: string) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase());

/** Whether `dir` looks like an image folder (images, or class folders holding images). */
export function isImageFolder(dir: string): boolean {
  const entries = readdirSync(dir, { withFileTypes: true });
  if (entries.some((e) => e.isFile() && isImage(e.name))) return true;
  return entries.some((e) => e.isDirectory() && readdirSync(join(dir, e.name)).some(isImage));
}

/** RGBA pixels of one image file. */
function decode(path: string): { width: number; height: number; rgba: Uint8Array } {
  const bytes = readFileSync(path);
  try {
    if (extname(path).toLowerCase() === '.png') {
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, rgba: png.data };
    }
    const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
    return { width: image.width, height: image.height, rgba: image.data };
  } catch (err) {
    throw new ImageFolderError(`${path}: not a readable ${extname(path).slice(1).toUpperCase()} image (${(err as Error).message})`);
  }
}

/** Bilinear sample of channel `k` of an RGBA image at (x, y) in source pixels. */
function sample(rgba: Uint8Array, width: number, height: number, x: number, y: number, k: number): number {
  const x0 = Math.max(0, Math.min(width - 1, Math.floor(x)));
  const y0 = Math.max(0, Math.min(height - 1, Math.floor(y)));
  const x1 = Math.min(width - 1, x0 + 1);
  const y1 = Math.min(height - 1, y0 + 1);
  const fx = Math.max(0, Math.min(1, x - x0));
  const fy = Math.max(0, Math.min(1, y - y0));
  const at = (xx: number, yy: number) => rgba[(yy * width + xx) * 4 + k]!;
  return (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) + (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
}

/** Writes one image into `out` (one sample) in `layout`. */
function place(image: { width: number; height: number; rgba: Uint8Array }, layout: ImageLayout, out: Float32Array): void {
  const { channels, height, width, channelsLast } = layout;
  const same = image.width === width && image.height === height;
  // Pixel centres map onto pixel centres (align_corners = false).
  const sx = image.width / width;
  const sy = image.height / height;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const px = same ? x : (x + 0.5) * sx - 0.5;
      const py = same ? y : (y + 0.5) * sy - 0.5;
      const value = (k: number) => (same ? image.rgba[(y * image.width + x) * 4 + k]! : sample(image.rgba, image.width, image.height, px, py, k));
      for (let c = 0; c < channels; c++) {
        const v = channels === 1 ? 0.299 * value(0) + 0.587 * value(1) + 0.114 * value(2) : value(c);
        out[channelsLast ? (y * width + x) * channels + c : (c * height + y) * width + x] = v;
      }
    }
  }
}

export function loadImageFolder(dir: string, sampleShape: readonly number[]): Dataset {
  const layout = imageLayoutOf(sampleShape);
  if (!layout)
    throw new ImageFolderError(
      `${dir} holds images, but the model's input takes samples of shape [${sampleShape.join(',')}], not an image ([C,H,W] or [H,W,C] with 1, 3 or 4 channels, or [H,W])`,
    );
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const classes = entries.filter((e) => e.isDirectory() && readdirSync(join(dir, e.name)).some(isImage)).map((e) => e.name);
  const files: { path: string; label: number }[] =
    classes.length > 0
      ? classes.flatMap((name, label) =>
          readdirSync(join(dir, name))
            .filter(isImage)
            .sort()
            .map((f) => ({ path: join(dir, name, f), label })),
        )
      : entries.filter((e) => e.isFile() && isImage(e.name)).map((e) => ({ path: join(dir, e.name), label: -1 }));
  if (files.length === 0) throw new ImageFolderError(`${dir} has no .png or .jpg images (in it or in class folders)`);
  const random = seededRandom(1);
  for (let i = files.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [files[i], files[j]] = [files[j]!, files[i]!];
  }
  const size = layout.channels * layout.height * layout.width;
  const inputs = new Float32Array(files.length * size);
  files.forEach((f, i) => {
    if (statSync(f.path).size > 4 * MAX_PIXELS) throw new ImageFolderError(`${f.path}: larger than ${4 * MAX_PIXELS} bytes`);
    const image = decode(f.path);
    if (image.width * image.height > MAX_PIXELS) throw new ImageFolderError(`${f.path}: ${image.width}x${image.height} pixels is more than accepted`);
    place(image, layout, inputs.subarray(i * size, (i + 1) * size));
  });
  const dataset: Dataset = { name: dir.replace(/\/+$/, '').split('/').at(-1)!, numSamples: files.length, sampleShape: [...sampleShape], inputs };
  if (classes.length > 0) dataset.labels = Int32Array.from(files, (f) => f.label);
  return dataset;
}
