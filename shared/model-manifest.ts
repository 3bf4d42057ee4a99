/**
 * The model repository: one folder per model, `<modelDir>/<name>/manifest.json` plus the ONNX
 * file it names. The controller reads manifests to validate requests and plan batches; workers
 * read them to create sessions. Loading checks every field and says precisely what is wrong.
 */
import { Type, type Static } from '@sinclair/typebox';
import { CodedError, ErrorCode } from './error-codes.js';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MAX_TENSOR_BYTES } from './codec.js';
import { DTYPE_BYTES, type TensorSpec } from './tensor.js';
import { checkEarlyExitFiles, EarlyExitSection, parseEarlyExit } from './early-exit-manifest.js';
import { dtype, int, list, num, SchemaError, str, validator } from './schema.js';

/** 1: a plain model. 2: adds `earlyExit` (a package from `escapement prepare`). Both load. */
export const MANIFEST_SCHEMA_VERSION = 2;
const SUPPORTED_SCHEMA_VERSIONS = [1, 2];

/** Positive integers, -1 for the batch dimension (and a sequence length). */
const specDimension = Type.Union([Type.Literal(-1), int(1)], { description: 'a positive integer or -1 (dynamic)' });
const TensorSpecSchema = Type.Object({ name: str(256), dtype, shape: list(specDimension, 8) });
const ascending = list(int(1), 1024);

export const SimulatedLatency = Type.Object({
  /** Fixed cost of one INFER, in µs. */
  baseUs: num(0),
  /** Added per batch item, in µs. */
  perItemUs: num(0),
});
export type SimulatedLatency = Static<typeof SimulatedLatency>;

/** Text models: inputs with a -1 after the batch dimension take the request's token count. */
export const SequenceSpec = Type.Object({
  /** Ascending lengths a request's tokens are padded up to; the last is the longest accepted. */
  buckets: ascending,
  /** tokenizer.json inside the package (text/word-tokenizer.ts), for clients to tokenize with. */
  tokenizer: Type.Optional(str(1024)),
});
export type SequenceSpec = Static<typeof SequenceSpec>;

export const ModelManifest = Type.Object({
  schemaVersion: int(1),
  name: str(256),
  /** ONNX file, relative to the manifest's folder. */
  file: str(1024),
  inputs: list(TensorSpecSchema, 64),
  outputs: list(TensorSpecSchema, 64),
  /**
   * Batch sizes the package is profiled at, ascending. A controller pads batches up to one of
   * these, or (exact batches, the default) runs any size up to the largest when the batch
   * dimension is dynamic; see `runnableBatchSizes`.
   */
  batchSizes: ascending,
  /** What the simulated worker sleeps when it "runs" this model. */
  simulated: Type.Optional(SimulatedLatency),
  /** Variable-length (token) inputs; absent: every non-batch dimension is fixed. */
  sequence: Type.Optional(SequenceSpec),
  /** Free-form provenance: where the ONNX came from, its licence, how it was ingested. */
  source: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  /** Ramps, segments and profiles of an early-exit package (schemaVersion 2). */
  earlyExit: Type.Optional(EarlyExitSection),
});
export type ModelManifest = Static<typeof ModelManifest>;

export interface ModelEntry {
  manifest: ModelManifest;
  /** Absolute path of the ONNX file. */
  onnxPath: string;
  /** Size of the ONNX file; the memory the controller accounts before a worker measures it. */
  fileBytes: number;
}

export class ManifestError extends CodedError {
  override readonly name = 'ManifestError';
  readonly code = ErrorCode.MANIFEST_INVALID;
}

export function isManifestError(err: unknown): err is ManifestError {
  return err instanceof ManifestError;
}

/** What the schema cannot say about a tensor: the batch dimension comes first, and one row fits in a message. */
function checkTensorSpecs(where: string, specs: TensorSpec[]): void {
  if (specs.length === 0) throw new ManifestError(`${where} must be a non-empty array`);
  specs.forEach((spec, i) => {
    if (spec.shape[0] !== -1) throw new ManifestError(`${where}[${i}].shape must start with -1 (the batch dimension)`);
    // One row (a dynamic sequence axis counted as 1) must fit in a message: a package declaring
    // more would make the controller and workers allocate it for every padded row.
    const rowBytes = spec.shape.slice(1).reduce((n, d) => n * (d > 0 ? d : 1), DTYPE_BYTES[spec.dtype]);
    if (!(rowBytes <= DEFAULT_MAX_TENSOR_BYTES))
      throw new ManifestError(
        `${where}[${i}] declares ${rowBytes.toExponential(2)} bytes a row, more than a message may carry (${DEFAULT_MAX_TENSOR_BYTES} bytes)`,
      );
  });
}

const isAscending = (values: number[]) => values.every((v, i) => i === 0 || v > values[i - 1]!);
const insidePackage = (path: string) => !path.includes('..');

/**
 * Every batch size a worker accepts for this model: any size up to the largest declared one when
 * every input's batch dimension is dynamic, else exactly the declared sizes.
 */
export function runnableBatchSizes(manifest: Pick<ModelManifest, 'batchSizes' | 'inputs'>): number[] {
  const dynamic = manifest.inputs.every((spec) => spec.shape[0] === -1);
  if (!dynamic) return manifest.batchSizes;
  return Array.from({ length: manifest.batchSizes.at(-1)! }, (_, i) => i + 1);
}

const checkManifest = validator(Type.Omit(ModelManifest, ['earlyExit']));

/** Checks a manifest against its schema, then what the schema cannot say; the early-exit section has its own checks. */
export function parseManifest(json: unknown, where = 'manifest'): ModelManifest {
  if (typeof json !== 'object' || json === null) throw new ManifestError(`${where} is not a JSON object`);
  const m = json as Record<string, unknown>;
  if (!SUPPORTED_SCHEMA_VERSIONS.includes(m.schemaVersion as number)) {
    throw new ManifestError(
      `${where}: schemaVersion ${String(m.schemaVersion)} is not supported (this build reads ${SUPPORTED_SCHEMA_VERSIONS.join(' and ')})`,
    );
  }
  let manifest: ModelManifest;
  try {
    manifest = checkManifest(json, where);
  } catch (err) {
    if (err instanceof SchemaError) throw new ManifestError(err.message);
    throw err;
  }
  if (!/^[A-Za-z0-9._-]+$/.test(manifest.name)) throw new ManifestError(`${where}: name must be letters, digits, '.', '_' or '-'`);
  if (!insidePackage(manifest.file)) throw new ManifestError(`${where}: file must be a relative path inside the package`);
  if (manifest.batchSizes.length === 0 || !isAscending(manifest.batchSizes))
    throw new ManifestError(`${where}: batchSizes must be ascending positive integers`);
  checkTensorSpecs(`${where}: inputs`, manifest.inputs);
  checkTensorSpecs(`${where}: outputs`, manifest.outputs);
  const sequence = manifest.sequence;
  if (sequence) {
    if (sequence.buckets.length === 0 || !isAscending(sequence.buckets))
      throw new ManifestError(`${where}: sequence.buckets must be ascending positive integers`);
    if (sequence.tokenizer !== undefined && !insidePackage(sequence.tokenizer))
      throw new ManifestError(`${where}: sequence.tokenizer must be a relative path inside the package`);
  }
  for (const spec of manifest.inputs) {
    if (spec.shape.slice(1).includes(-1) && !sequence)
      throw new ManifestError(`${where}: input '${spec.name}' has a dynamic dimension after the batch; that needs a "sequence" section`);
  }
  if (m.earlyExit !== undefined) {
    if (manifest.schemaVersion < 2) throw new ManifestError(`${where}: earlyExit needs schemaVersion 2`);
    try {
      manifest.earlyExit = parseEarlyExit(m.earlyExit, where, manifest.batchSizes);
    } catch (err) {
      throw new ManifestError((err as Error).message);
    }
  }
  return manifest;
}

const PACKAGE_NAME = /^[A-Za-z0-9._-]+$/;
const COPY_NAME = /^([A-Za-z0-9._-]+)@([1-9][0-9]{0,5})$/;

/**
 * Clockwork serves many copies of one model as separate models (each loaded, placed and evicted
 * on its own). Copy 0 of package `p` is `p` itself; copy k > 0 is `p@k`.
 */
export function modelCopyName(packageName: string, copy: number): string {
  return copy === 0 ? packageName : `${packageName}@${copy}`;
}

/** The package folder a model name is served from: `p` for `p` and for its copies `p@k`. */
export function packageNameOf(name: string): string {
  if (PACKAGE_NAME.test(name)) return name;
  const copy = COPY_NAME.exec(name);
  if (!copy) throw new ManifestError(`'${name}' is not a model name (letters, digits, '.', '_', '-'; copy k of a package is 'name@k')`);
  return copy[1]!;
}

/** Loads `<modelDir>/<package>/`; a copy name (`p@k`) gets the package's entry under its own name. */
export function loadModelEntry(modelDir: string, name: string): ModelEntry {
  const packageName = packageNameOf(name);
  const entry = loadPackage(modelDir, packageName);
  return packageName === name ? entry : { ...entry, manifest: { ...entry.manifest, name } };
}

function loadPackage(modelDir: string, name: string): ModelEntry {
  const folder = join(modelDir, name);
  const manifestPath = join(folder, 'manifest.json');
  if (!existsSync(manifestPath)) throw new ManifestError(`no manifest at ${manifestPath}`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (err) {
    throw new ManifestError(`${manifestPath} is not valid JSON: ${(err as Error).message}`);
  }
  const manifest = parseManifest(json, manifestPath);
  if (manifest.name !== name) throw new ManifestError(`${manifestPath}: name '${manifest.name}' does not match its folder '${name}'`);
  const onnxPath = join(folder, manifest.file);
  if (!existsSync(onnxPath)) throw new ManifestError(`${manifestPath}: file ${manifest.file} does not exist`);
  if (manifest.sequence?.tokenizer && !existsSync(join(folder, manifest.sequence.tokenizer))) {
    throw new ManifestError(`${manifestPath}: sequence.tokenizer ${manifest.sequence.tokenizer} does not exist`);
  }
  if (manifest.earlyExit) {
    try {
      checkEarlyExitFiles(manifest.earlyExit, folder, manifestPath);
    } catch (err) {
      throw new ManifestError((err as Error).message);
    }
  }
  return { manifest, onnxPath, fileBytes: statSync(onnxPath).size };
}

/**
 * Every model folder under `modelDir` (folders without a manifest.json are ignored), each served
 * as `numCopies` models: the package's own name, then `name@1` … `name@{numCopies-1}`.
 */
export function loadModelRepository(modelDir: string, numCopies = 1): Map<string, ModelEntry> {
  if (!Number.isInteger(numCopies) || numCopies < 1 || numCopies > 100_000)
    throw new ManifestError(`copies per model must be an integer in [1, 100000], got ${numCopies}`);
  const models = new Map<string, ModelEntry>();
  for (const name of readdirSync(modelDir).sort()) {
    if (!existsSync(join(modelDir, name, 'manifest.json'))) continue;
    const entry = loadPackage(modelDir, name);
    models.set(name, entry);
    for (let k = 1; k < numCopies; k++) {
      const copy = modelCopyName(name, k);
      models.set(copy, { ...entry, manifest: { ...entry.manifest, name: copy } });
    }
  }
  return models;
}
