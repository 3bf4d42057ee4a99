/**
 * Labelled (or unlabelled) datasets for ramp training and replay.
 *
 * Formats:
 * - IDX (the MNIST / Fashion-MNIST format), raw or gzipped: an images file and an optional
 *   labels file;
 * - NPY (NumPy's array format, version 1–3, little-endian float32/float64/uint8/int32/int64):
 *   an inputs array [N, ...] and an optional labels array [N];
 * - a folder of .png/.jpg images, or of class folders holding them (labels: the class folders in
 *   sorted order), laid out as the model's input wants (image-folder.ts);
 * - a folder with `dataset.json` naming its files:
 *   `{"format": "idx" | "npy", "inputs": "FILE", "labels": "FILE"?, "name"?, "license"?}`;
 * - text: a folder whose `dataset.json` says `{"format": "text", "corpus": "FILE.jsonl.gz"}`
 *   (see text/text-corpus.ts). Text needs the model's tokenizer: samples are its token ids padded
 *   to its `maxTokens`, with the attention mask as a side input.
 * Image inputs are returned as float32 in the model's raw units (pixels stay 0–255).
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readTextCorpus } from '../text/text-corpus.js';
import { isImageFolder, loadImageFolder } from './image-folder.js';
import { padTokenRows } from '../text/token-tensors.js';
import type { WordTokenizer } from '../text/word-tokenizer.js';

export interface Dataset {
  name: string;
  numSamples: number;
  /** Shape of one sample, without the batch dimension. */
  sampleShape: number[];
  /** All samples, row-major: sample i is inputs[i*sampleSize .. (i+1)*sampleSize). */
  inputs: Float32Array | BigInt64Array;
  labels?: Int32Array;
  /** Text datasets: the input the token ids feed, and the texts themselves. */
  text?: {
    idsInput: string;
    /** The attention mask, laid out like `inputs`. */
    maskInput: string;
    mask: BigInt64Array;
    texts: string[];
  };
}

export class DatasetError extends CodedError {
  override readonly name = 'DatasetError';
  readonly code = ErrorCode.DATASET_INVALID;
}

export function isDatasetError(err: unknown): err is DatasetError {
  return err instanceof DatasetError;
}

function readMaybeGzip(path: string): Buffer {
  if (!existsSync(path)) throw new DatasetError(`dataset file ${path} does not exist`);
  const raw = readFileSync(path);
  return raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
}

/** IDX: magic 0x0000, type byte, rank byte, rank × uint32 BE dims, then data. */
export function readIdx(path: string): { shape: number[]; values: Float32Array | Int32Array; isInteger: boolean } {
  const buf = readMaybeGzip(path);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new DatasetError(`${path} is not an IDX file (bad magic)`);
  const type = buf[2]!;
  const rank = buf[3]!;
  const shape = Array.from({ length: rank }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * rank;
  const width = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 }[type];
  if (!width) throw new DatasetError(`${path}: unsupported IDX element type 0x${type.toString(16)}`);
  if (buf.length !== offset + count * width)
    throw new DatasetError(`${path}: header says ${count} values of ${width} bytes but the file holds ${buf.length - offset} bytes`);
  const isInteger = type !== 0x0d && type !== 0x0e;
  const values = isInteger ? new Int32Array(count) : new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const at = offset + i * width;
    values[i] =
      type === 0x08
        ? buf[at]!
        : type === 0x09
          ? buf.readInt8(at)
          : type === 0x0b
            ? buf.readInt16BE(at)
            : type === 0x0c
              ? buf.readInt32BE(at)
              : type === 0x0d
                ? buf.readFloatBE(at)
                : buf.readDoubleBE(at);
  }
  return { shape, values, isInteger };
}

/** NPY v1–3, little-endian, C order. */
export function readNpy(path: string): { shape: number[]; values: Float32Array | Int32Array; isInteger: boolean } {
  const buf = readMaybeGzip(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new DatasetError(`${path} is not an NPY file (bad magic)`);
  const major = buf[6]!;
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', headerStart, headerStart + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new DatasetError(`${path}: unreadable NPY header ${JSON.stringify(header)}`);
  if (fortran === 'True') throw new DatasetError(`${path}: Fortran-ordered arrays are not supported; save with C order`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const data = buf.subarray(headerStart + headerLen);
  const kinds: Record<string, [number, boolean]> = { '<f4': [4, false], '<f8': [8, false], '|u1': [1, true], '<i4': [4, true], '<i8': [8, true] };
  const kind = kinds[descr];
  if (!kind) throw new DatasetError(`${path}: dtype ${descr} is not supported (float32, float64, uint8, int32, int64)`);
  const [width, isInteger] = kind;
  if (data.length !== count * width) throw new DatasetError(`${path}: shape (${shape.join(', ')}) needs ${count * width} bytes, the file holds ${data.length}`);
  const values = isInteger ? new Int32Array(count) : new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * width;
    values[i] =
      descr === '<f4'
        ? data.readFloatLE(at)
        : descr === '<f8'
          ? data.readDoubleLE(at)
          : descr === '|u1'
            ? data[at]!
            : descr === '<i4'
              ? data.readInt32LE(at)
              : Number(data.readBigInt64LE(at));
  }
  return { shape, values, isInteger };
}

interface DatasetDescriptor {
  format: 'idx' | 'npy' | 'text';
  inputs: string;
  corpus?: string;
  labels?: string;
  name?: string;
}

function readArray(format: 'idx' | 'npy', path: string) {
  return format === 'idx' ? readIdx(path) : readNpy(path);
}

/**
 * Loads a dataset from a folder with dataset.json, a folder of images (or of class folders of
 * images; see image-folder.ts), or a single .npy/IDX inputs file. Images are laid out as
 * `imageShape` (the model input's per-sample shape) says.
 */
export function loadDataset(path: string, options: { tokenizer?: WordTokenizer; imageShape?: readonly number[] } = {}): Dataset {
  let descriptor: DatasetDescriptor;
  let base: string;
  if (existsSync(path) && statSync(path).isDirectory()) {
    const file = join(path, 'dataset.json');
    if (!existsSync(file) && isImageFolder(path)) {
      if (!options.imageShape) throw new DatasetError(`${path} is a folder of images: reading it needs the model's input shape`);
      try {
        return loadImageFolder(path, options.imageShape);
      } catch (err) {
        throw new DatasetError((err as Error).message);
      }
    }
    if (!existsSync(file)) throw new DatasetError(`${path} has no dataset.json and no images (see prepare/dataset.ts for the formats)`);
    descriptor = JSON.parse(readFileSync(file, 'utf8')) as DatasetDescriptor;
    base = path;
    if (descriptor.format === 'text') return loadTextDataset(path, descriptor, options.tokenizer);
    if (descriptor.format !== 'idx' && descriptor.format !== 'npy') throw new DatasetError(`${file}: format must be "idx", "npy" or "text"`);
    if (typeof descriptor.inputs !== 'string') throw new DatasetError(`${file}: "inputs" must name the inputs file`);
  } else {
    descriptor = { format: /\.npy(\.gz)?$/.test(path) ? 'npy' : 'idx', inputs: basename(path) };
    base = dirname(path);
  }
  const inputs = readArray(descriptor.format as 'idx' | 'npy', join(base, descriptor.inputs));
  if (inputs.shape.length < 2) throw new DatasetError(`${descriptor.inputs}: inputs need a sample dimension and at least one more`);
  const numSamples = inputs.shape[0]!;
  const dataset: Dataset = {
    name: descriptor.name ?? descriptor.inputs,
    numSamples,
    sampleShape: inputs.shape.slice(1),
    inputs: inputs.values instanceof Float32Array ? inputs.values : Float32Array.from(inputs.values),
  };
  if (descriptor.labels) {
    const labels = readArray(descriptor.format as 'idx' | 'npy', join(base, descriptor.labels));
    if (!labels.isInteger || labels.shape.length !== 1) throw new DatasetError(`${descriptor.labels}: labels must be a 1-D integer array`);
    if (labels.shape[0] !== numSamples) throw new DatasetError(`${descriptor.labels}: ${labels.shape[0]} labels for ${numSamples} samples`);
    dataset.labels = labels.values as Int32Array;
  }
  return dataset;
}

function loadTextDataset(folder: string, descriptor: DatasetDescriptor, tokenizer: WordTokenizer | undefined): Dataset {
  if (typeof descriptor.corpus !== 'string') throw new DatasetError(`${folder}/dataset.json: a text dataset needs "corpus" (a JSON-lines file)`);
  if (!tokenizer) throw new DatasetError(`${folder} is a text dataset: it needs the model's tokenizer (--tokenizer FILE)`);
  let corpus;
  try {
    corpus = readTextCorpus(join(folder, descriptor.corpus));
  } catch (err) {
    throw new DatasetError((err as Error).message);
  }
  const padded = padTokenRows(
    corpus.texts.map((t) => tokenizer.encode(t).ids),
    tokenizer.maxTokens,
  );
  return {
    name: descriptor.name ?? descriptor.corpus,
    numSamples: corpus.texts.length,
    sampleShape: [tokenizer.maxTokens],
    inputs: padded.ids,
    labels: corpus.labels,
    text: { idsInput: tokenizer.file.inputNames.ids, maskInput: tokenizer.file.inputNames.mask, mask: padded.mask, texts: corpus.texts },
  };
}

/** All samples of an image (float32) dataset; throws for token datasets. */
export function imageInputs(dataset: Dataset): Float32Array {
  if (!(dataset.inputs instanceof Float32Array)) throw new DatasetError(`${dataset.name} holds token ids, not float32 samples`);
  return dataset.inputs;
}

/** Sample i as a float32 view (image datasets). */
export function sampleAt(dataset: Dataset, i: number): Float32Array {
  if (!(dataset.inputs instanceof Float32Array)) throw new DatasetError(`${dataset.name} holds token ids, not float32 samples`);
  const size = dataset.inputs.length / dataset.numSamples;
  return dataset.inputs.subarray(i * size, (i + 1) * size);
}

/**
 * The paper's split: the first `bootstrapFraction` of the dataset (in order) bootstraps the
 * ramps, divided `trainParts : valParts` into ramp training and validation; the rest is served.
 */
export function bootstrapSplit(numSamples: number, bootstrapFraction: number, trainParts: number, valParts: number) {
  const numBootstrap = Math.floor(numSamples * bootstrapFraction);
  const numTrain = Math.round((numBootstrap * trainParts) / (trainParts + valParts));
  return {
    train: { start: 0, end: numTrain },
    validation: { start: numTrain, end: numBootstrap },
    serve: { start: numBootstrap, end: numSamples },
  };
}
