/**
 * The early-exit part of a model package's manifest (schemaVersion 2): ramp sites, trained ramp
 * heads with their validation statistics, the initially chosen ramps, the segments that run the
 * model as a chain, the latency profile, and the provenance of the bootstrap data.
 *
 * Every ramp answers with the rule `max softmax ≥ threshold`; a threshold above 1 disables it.
 */
import { Type, type Static } from '@sinclair/typebox';
import { CodedError, ErrorCode } from './error-codes.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { int, list, num, SchemaError, str, validator } from './schema.js';

const ms = num(0);
const fraction = num(0, 1);
const msByBatchSize = Type.Record(Type.String(), ms);
const dims = list(int(-1), 8);
/** A file of the package, relative to its folder (checked to stay inside it). */
const file = str(1024);
const optimizedFile = Type.Optional(file);

export const SiteEntry = Type.Object({
  id: int(0),
  /** The activation tensor the site cuts at. */
  tensor: str(),
  /** Side tensors (attention masks, ...) that cross the cut with it. */
  sideTensors: list(str()),
  /** Element type and shape (-1: dynamic) of each side tensor, so segments can declare them. */
  sideTensorTypes: Type.Optional(Type.Record(Type.String(), Type.Object({ elemType: int(0), shape: dims }))),
  kind: Type.Union([Type.Literal('feature-map'), Type.Literal('sequence')]),
  /** With -1 for the batch dimension (and for a sequence length, in text models). */
  shape: dims,
  elemType: int(0),
  /** The node producing the tensor (for people reading the manifest). */
  producer: str(),
});
export type SiteEntry = Static<typeof SiteEntry>;

export const RampEntry = Type.Object({
  siteId: int(0),
  /** Head ONNX (input: the site's tensor; output: `outputName`, probabilities). */
  file,
  /** The same head after onnxruntime's offline graph optimisation, if compiled. */
  optimizedFile,
  outputName: str(),
  numClasses: int(1),
  trainAccuracy: fraction,
  /** How the head was trained: distilled from the model's logits, or on the labels alone. */
  training: Type.Optional(Type.Union([Type.Literal('distilled'), Type.Literal('labels')])),
  /** Validation exit fraction at the budget of each training candidate (the larger was kept). */
  candidateExitFractions: Type.Optional(Type.Object({ distilled: fraction, labels: fraction })),
  validation: Type.Object({
    numSamples: int(0),
    agreement: fraction,
    accuracy: Type.Optional(fraction),
    threshold: num(0),
    exitFraction: fraction,
    agreementAtThreshold: fraction,
    histogram: Type.Object({ binWidth: num(0), counts: list(int(0)), agreeCounts: list(int(0)) }),
  }),
  /** Head latency per batch size (ms, median). */
  costMs: msByBatchSize,
});
export type RampEntry = Static<typeof RampEntry>;

export const SegmentEntry = Type.Object({
  file,
  optimizedFile,
  inputs: list(str()),
  outputs: list(str()),
  /** The site this segment ends at, or null for the last segment (it ends at the model output). */
  endsAtSite: Type.Union([int(0), Type.Null()]),
});
export type SegmentEntry = Static<typeof SegmentEntry>;

const range = Type.Object({ start: int(0), end: int(0) });

export const EarlyExitSection = Type.Object({
  /** The primary input activations flow from. */
  primaryInput: str(),
  /** The model output ramps stand in for (logits). */
  finalOutput: str(),
  numClasses: int(1),
  sites: list(SiteEntry),
  ramps: list(RampEntry),
  /** Site ids of the initially active ramps, in depth order. */
  chosenRamps: list(int(0), 64),
  /** Initial thresholds of the chosen ramps, by site id. */
  initialThresholds: Type.Record(Type.String(), num(0)),
  /** Segments for the chosen ramps (the model = their chain). */
  segments: list(SegmentEntry, 65),
  profile: Type.Object({
    batchSizes: list(int(1), 64),
    /** Whole model, ms per batch size. */
    wholeMs: msByBatchSize,
    /** Backbone time from the input to each site, ms per batch size (keys: site id, then batch size). */
    siteUpToMs: Type.Record(Type.String(), msByBatchSize),
    /** The chosen segment chain without ramps, ms per batch size. */
    chainMs: msByBatchSize,
    /** Reference batch size for the ramp choice. */
    referenceBatchSize: int(1),
  }),
  selection: Type.Object({
    maxRamps: int(0),
    overheadBudget: num(0),
    accuracyBudget: fraction,
    savingMs: num(),
    agreement: fraction,
    exitFractions: list(fraction, 64),
  }),
  dataset: Type.Object({
    name: str(),
    numSamples: int(0),
    bootstrapFraction: fraction,
    trainVal: Type.Tuple([num(0), num(0)]),
    train: range,
    validation: range,
    /** First sample not used for bootstrapping: serve and evaluate from here on. */
    serveStart: int(0),
    labels: Type.Union([Type.Literal('truth'), Type.Literal('model')]),
  }),
  seed: int(),
  compile: Type.Object({
    optimizationLevel: str(64),
    /** onnxruntime graph optimisation level the segment chain runs at (measured faster); default 'all'. */
    chainOptimizationLevel: Type.Optional(Type.Union([Type.Literal('basic'), Type.Literal('extended'), Type.Literal('all')])),
    /** The chain's profile (ms per batch size) at each level measured. */
    chainMsByLevel: Type.Optional(Type.Record(Type.String(), msByBatchSize)),
    onnxruntime: str(64),
    device: str(64),
  }),
  verification: Type.Object({ maxAbsDiff: num(0), predictionAgreement: fraction, numSamples: int(0) }),
});
export type EarlyExitSection = Static<typeof EarlyExitSection>;

export class EarlyExitManifestError extends CodedError {
  override readonly name = 'EarlyExitManifestError';
  readonly code = ErrorCode.MANIFEST_INVALID;
}

export function isEarlyExitManifestError(err: unknown): err is EarlyExitManifestError {
  return err instanceof EarlyExitManifestError;
}

function fail(where: string, message: string): never {
  throw new EarlyExitManifestError(`${where}: ${message}`);
}

const checkSection = validator(EarlyExitSection);

/** Checks the early-exit section against its schema, then its cross-references; returns it typed. */
export function parseEarlyExit(value: unknown, where: string, batchSizes: number[]): EarlyExitSection {
  let ee: EarlyExitSection;
  try {
    ee = checkSection(value, 'earlyExit');
  } catch (err) {
    if (err instanceof SchemaError) fail(where, err.message);
    throw err;
  }
  const siteIds = new Set(ee.sites.map((s) => s.id));
  const rampSites = new Set<number>();
  ee.ramps.forEach((r, i) => {
    if (!siteIds.has(r.siteId)) fail(where, `ramps[${i}] refers to site ${r.siteId}, which is not among the sites`);
    for (const f of [r.file, r.optimizedFile]) if (f?.includes('..')) fail(where, `ramps[${i}].file must be a relative path inside the package`);
    for (const b of batchSizes) if (r.costMs[b] === undefined) fail(where, `ramps[${i}].costMs has no entry for batch size ${b}`);
    rampSites.add(r.siteId);
  });
  ee.segments.forEach((s, i) => {
    for (const f of [s.file, s.optimizedFile]) if (f?.includes('..')) fail(where, `segments[${i}].file must be a relative path inside the package`);
  });
  for (const id of ee.chosenRamps) {
    if (!rampSites.has(id)) fail(where, `chosenRamps names site ${id}, which has no trained ramp`);
    if (ee.initialThresholds[id] === undefined) fail(where, `initialThresholds has no value for chosen ramp ${id}`);
  }
  const expectedEnds = [...ee.chosenRamps, null];
  if (ee.segments.length !== expectedEnds.length || ee.segments.some((s, i) => s.endsAtSite !== expectedEnds[i])) {
    fail(where, `segments must end at the chosen sites [${ee.chosenRamps.join(', ')}] and then at the output`);
  }
  for (const b of batchSizes) {
    if (ee.profile.wholeMs[b] === undefined) fail(where, `profile.wholeMs has no entry for batch size ${b}`);
  }
  return ee;
}

/** Every file an early-exit section names, relative to the package folder. */
export function earlyExitFiles(ee: EarlyExitSection): string[] {
  return [
    ...ee.ramps.flatMap((r) => [r.file, ...(r.optimizedFile ? [r.optimizedFile] : [])]),
    ...ee.segments.flatMap((s) => [s.file, ...(s.optimizedFile ? [s.optimizedFile] : [])]),
  ];
}

export function checkEarlyExitFiles(ee: EarlyExitSection, folder: string, where: string): void {
  for (const file of earlyExitFiles(ee)) {
    if (!existsSync(join(folder, file))) fail(where, `file ${file} does not exist`);
  }
}
