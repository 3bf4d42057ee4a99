/**
 * The early-exit part of a model package's manifest (schemaVersion 2): ramp sites, trained ramp
 * heads with their validation statistics, the initially chosen ramps, the segments that run the
 * model as a chain, the latency profile, and the provenance of the bootstrap data.
 *
 * Every ramp answers with the rule `max softmax ≥ threshold`; a threshold above 1 disables it.
 */
import { CodedError, ErrorCode } from './error-codes.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface SiteEntry {
  id: number;
  /** The activation tensor the site cuts at. */
  tensor: string;
  /** Side tensors (attention masks, ...) that cross the cut with it. */
  sideTensors: string[];
  /** Element type and shape (-1: dynamic) of each side tensor, so segments can declare them. */
  sideTensorTypes?: Record<string, { elemType: number; shape: number[] }>;
  kind: 'feature-map' | 'sequence';
  /** With -1 for the batch dimension (and for a sequence length, in text models). */
  shape: number[];
  elemType: number;
  /** The node producing the tensor (for people reading the manifest). */
  producer: string;
}

export interface RampEntry {
  siteId: number;
  /** Head ONNX (input: the site's tensor; output: `outputName`, probabilities). */
  file: string;
  /** The same head after onnxruntime's offline graph optimisation, if compiled. */
  optimizedFile?: string;
  outputName: string;
  numClasses: number;
  trainAccuracy: number;
  /** How the head was trained: distilled from the model's logits, or on the labels alone. */
  training?: 'distilled' | 'labels';
  /** Validation exit fraction at the budget of each training candidate (the larger was kept). */
  candidateExitFractions?: { distilled: number; labels: number };
  validation: {
    numSamples: number;
    agreement: number;
    accuracy?: number;
    threshold: number;
    exitFraction: number;
    agreementAtThreshold: number;
    histogram: { binWidth: number; counts: number[]; agreeCounts: number[] };
  };
  /** Head latency per batch size (ms, median). */
  costMs: Record<string, number>;
}

export interface SegmentEntry {
  file: string;
  optimizedFile?: string;
  inputs: string[];
  outputs: string[];
  /** The site this segment ends at, or null for the last segment (it ends at the model output). */
  endsAtSite: number | null;
}

export interface EarlyExitSection {
  /** The primary input activations flow from. */
  primaryInput: string;
  /** The model output ramps stand in for (logits). */
  finalOutput: string;
  numClasses: number;
  sites: SiteEntry[];
  ramps: RampEntry[];
  /** Site ids of the initially active ramps, in depth order. */
  chosenRamps: number[];
  /** Initial thresholds of the chosen ramps, by site id. */
  initialThresholds: Record<string, number>;
  /** Segments for the chosen ramps (the model = their chain). */
  segments: SegmentEntry[];
  profile: {
    batchSizes: number[];
    /** Whole model, ms per batch size. */
    wholeMs: Record<string, number>;
    /** Backbone time from the input to each site, ms per batch size (keys: site id, then batch size). */
    siteUpToMs: Record<string, Record<string, number>>;
    /** The chosen segment chain without ramps, ms per batch size. */
    chainMs: Record<string, number>;
    /** Reference batch size for the ramp choice. */
    referenceBatchSize: number;
  };
  selection: { maxRamps: number; overheadBudget: number; accuracyBudget: number; savingMs: number; agreement: number; exitFractions: number[] };
  dataset: {
    name: string;
    numSamples: number;
    bootstrapFraction: number;
    trainVal: [number, number];
    train: { start: number; end: number };
    validation: { start: number; end: number };
    /** First sample not used for bootstrapping: serve and evaluate from here on. */
    serveStart: number;
    labels: 'truth' | 'model';
  };
  seed: number;
  compile: {
    optimizationLevel: string;
    /** onnxruntime graph optimisation level the segment chain runs at (measured faster); default 'all'. */
    chainOptimizationLevel?: 'basic' | 'extended' | 'all';
    /** The chain's profile (ms per batch size) at each level measured. */
    chainMsByLevel?: Record<string, Record<string, number>>;
    onnxruntime: string;
    device: string;
  };
  verification: { maxAbsDiff: number; predictionAgreement: number; numSamples: number };
}

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

/** Checks the early-exit section's structure and cross-references; returns it typed. */
export function parseEarlyExit(value: unknown, where: string, batchSizes: number[]): EarlyExitSection {
  if (typeof value !== 'object' || value === null) fail(where, 'earlyExit must be an object');
  const ee = value as EarlyExitSection;
  if (!Array.isArray(ee.sites) || !Array.isArray(ee.ramps) || !Array.isArray(ee.segments) || !Array.isArray(ee.chosenRamps)) {
    fail(where, 'earlyExit needs arrays sites, ramps, segments and chosenRamps');
  }
  if (typeof ee.primaryInput !== 'string' || typeof ee.finalOutput !== 'string') fail(where, 'earlyExit needs primaryInput and finalOutput names');
  const siteIds = new Set(ee.sites.map((s) => s.id));
  ee.sites.forEach((s, i) => {
    if (!Number.isInteger(s.id) || typeof s.tensor !== 'string' || !Array.isArray(s.shape))
      fail(where, `sites[${i}] needs an integer id, a tensor name and a shape`);
  });
  const rampSites = new Set<number>();
  ee.ramps.forEach((r, i) => {
    if (!siteIds.has(r.siteId)) fail(where, `ramps[${i}] refers to site ${r.siteId}, which is not among the sites`);
    if (typeof r.file !== 'string' || r.file.includes('..')) fail(where, `ramps[${i}].file must be a relative path inside the package`);
    if (!(r.validation?.threshold >= 0)) fail(where, `ramps[${i}].validation.threshold is missing`);
    for (const b of batchSizes) if (!(r.costMs?.[b] !== undefined)) fail(where, `ramps[${i}].costMs has no entry for batch size ${b}`);
    rampSites.add(r.siteId);
  });
  for (const id of ee.chosenRamps) {
    if (!rampSites.has(id)) fail(where, `chosenRamps names site ${id}, which has no trained ramp`);
    if (typeof ee.initialThresholds?.[id] !== 'number') fail(where, `initialThresholds has no value for chosen ramp ${id}`);
  }
  const expectedEnds = [...ee.chosenRamps, null];
  if (ee.segments.length !== expectedEnds.length || ee.segments.some((s, i) => s.endsAtSite !== expectedEnds[i])) {
    fail(where, `segments must end at the chosen sites [${ee.chosenRamps.join(', ')}] and then at the output`);
  }
  for (const b of batchSizes) {
    if (ee.profile?.wholeMs?.[b] === undefined) fail(where, `profile.wholeMs has no entry for batch size ${b}`);
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
