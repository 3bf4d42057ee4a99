/**
 * `escapement prepare`: turns an ONNX classifier into an early-exit model package.
 *
 * 1. ingest: validate the graph, make the batch dynamic, check the dataset fits the input;
 * 2. find ramp sites (single-activation cuts whose tensor suits a head);
 * 3. segment at every site and verify on real inputs that the chain reproduces the model;
 * 4. extract pooled features on the bootstrap data (the first fraction of the dataset), train a
 *    head per site on the training part, validate on the rest (agreement, threshold, exits);
 * 5. profile the whole model, the segments and every head at each batch size;
 * 6. choose the initial ramps greedily under the ramp-count and overhead budgets;
 * 7. write the segments for the chosen ramps and every head, plus onnxruntime-optimised copies;
 * 8. write manifest.json (schemaVersion 2) and check the package loads.
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { monotonicNowNs } from '../shared/clock.js';
import type { EarlyExitSection, RampEntry } from '../shared/early-exit-manifest.js';
import { loadModelEntry, type ModelManifest } from '../shared/model-manifest.js';
import { dataInputNames, makeBatchDynamic } from './batch-dimension.js';
import { bootstrapSplit, loadDataset, type Dataset } from './dataset.js';
import { datasetFeeds } from './dataset-feeds.js';
import { WordTokenizer } from '../text/word-tokenizer.js';
import { runtimeRefusal, validateGraph } from './ingest.js';
import { defaultDomainOpset, MIN_RUNTIME_OPSET, needsOpsetUpgrade, upgradeOpset } from '../onnx/opset-upgrade.js';
import { decodeModel, encodeModel, type ModelProto } from '../onnx/onnx-proto.js';
import { hostSpecificNodes } from '../onnx/portable-graph.js';
import { openSession, profileModel, timeBatches, DEFAULT_PROFILE_OPTIONS, type ProfileOptions } from './profiler.js';
import { gridPooling, headModelBytes, headOutputName } from './ramp-heads.js';
import { boundedSelection, selectRamps, type RampCandidate, type SelectionResult } from './ramp-selection.js';
import { findRampSites, type RampSite } from './ramp-sites.js';
import { evaluateHead, validateRamp, type RampOutputs, type RampValidation } from './ramp-statistics.js';
import { DEFAULT_TRAIN_OPTIONS, trainHead, type TrainedHead } from './ramp-trainer.js';
import { evaluateHeadNative, headTrainingWork, LARGE_HEAD_WORK, trainHeadNative } from './native-head-trainer.js';
import { chooseOutput, pruneToOutput, type OutputChoice } from './output-choice.js';
import { SegmentChain } from '../onnx/segment-chain.js';
import { segmentModel, type Segment, type TensorType } from '../onnx/segmenter.js';
import { extractSiteFeatures, featureBatchSize } from './site-features.js';
import { castUint8Inputs } from './input-cast.js';
import { fitSamples } from './sample-layout.js';
import { peakRssBytes } from '../shared/peak-memory.js';

export interface PrepareOptions {
  modelPath: string;
  datasetPath: string;
  /** Package folder; its last path component is the package name unless `name` is given. */
  outDir: string;
  name: string;
  labels: 'truth' | 'model';
  bootstrapFraction: number;
  trainVal: [number, number];
  maxRamps: number;
  /** Σ ramp cost ≤ this fraction of the model's latency. */
  overheadBudget: number;
  /** Agreement with the full model must stay ≥ 1 − this. */
  accuracyBudget: number;
  seed: number;
  batchSizes: number[];
  /** Batch size whose profile drives the ramp choice. */
  referenceBatchSize: number;
  profile: ProfileOptions;
  /** Files copied into the package as they are (licences, notices). */
  include: string[];
  /** Text models: the tokenizer.json that turns the dataset's texts into the model's inputs. */
  tokenizerPath?: string;
  /** The output that is the answer (the logits), for models with several; default: chosen by the graph (output-choice.ts). */
  output?: string;
  /** Text models: sequence lengths requests are padded up to (the tokenizer's maxTokens last). */
  sequenceBuckets?: number[];
  onProgress: (stage: string, done: number, total: number) => void;
}

export const DEFAULT_PREPARE_OPTIONS = {
  // Ramps learn the model's own answers: the exit rule is judged on agreement with the model.
  labels: 'model' as const,
  bootstrapFraction: 0.1,
  trainVal: [1, 9] as [number, number],
  maxRamps: 3,
  overheadBudget: 0.05,
  accuracyBudget: 0.01,
  seed: 1,
  batchSizes: [1, 2, 4, 8, 16],
  referenceBatchSize: 4,
  profile: DEFAULT_PROFILE_OPTIONS,
  include: [] as string[],
};

export interface RampReport {
  siteId: number;
  producer: string;
  shape: number[];
  trainAccuracy: number;
  training: 'distilled' | 'labels';
  validationAccuracy?: number;
  agreement: number;
  threshold: number;
  exitFraction: number;
  agreementAtThreshold: number;
  costMsAtReference: number;
  chosen: boolean;
}

export interface PrepareReport {
  manifest: ModelManifest;
  /** Which output is the answer, and what was dropped (output-choice.ts). */
  outputChoice: string;
  /** uint8 inputs the package takes as float32 pixel values (cast inside; input-cast.ts). */
  castInputs: string[];
  /** What prepare did to fit the input and the dataset, for the user. */
  inputNotes: string[];
  numSites: number;
  ramps: RampReport[];
  selection: SelectionResult;
  wholeMsAtReference: number;
  verification: EarlyExitSection['verification'];
  seconds: number;
  /** Peak resident memory of the preparing process so far (MB; Linux), when known. */
  peakRssMb?: number;
}

function peakRss(): { peakRssMb?: number } {
  const bytes = peakRssBytes();
  return bytes === undefined ? {} : { peakRssMb: Math.round(bytes / 2 ** 20) };
}

export class PrepareError extends CodedError {
  override readonly name = 'PrepareError';
  readonly code = ErrorCode.PREPARE_REFUSED;
}

export function isPrepareError(err: unknown): err is PrepareError {
  return err instanceof PrepareError;
}

/** Optimisation levels a chain is measured at (the worker's default for whole models is 'all'). */
const CHAIN_LEVELS = ['basic', 'all'] as const;
type ChainOptimizationLevel = (typeof CHAIN_LEVELS)[number] | 'extended';

const ONNXRUNTIME_VERSION = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;

const sampleFeeds = (inputName: string, dataset: Dataset, start: number, count: number) => datasetFeeds(dataset, inputName, start, count);

/** Step 1: ingestion and the checks that make later steps meaningful. */
async function ingest(options: PrepareOptions): Promise<{
  model: ModelProto;
  dataset: Dataset;
  inputName: string;
  outputName: string;
  outputChoice: string;
  castInputs: string[];
  inputNotes: string[];
  tokenizer?: WordTokenizer;
}> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(options.modelPath);
  } catch (err) {
    throw new PrepareError(`cannot read ${options.modelPath}: ${(err as Error).message}`);
  }
  let model = decodeModel(bytes);
  let upgradeNote: string | undefined;
  if (needsOpsetUpgrade(model)) {
    try {
      const upgrade = upgradeOpset(bytes, defaultDomainOpset(model)!);
      model = decodeModel(upgrade.bytes);
      upgradeNote = `opset ${upgrade.fromOpset} upgraded to ${upgrade.toOpset} with ${upgrade.converter} (onnxruntime runs opset ${MIN_RUNTIME_OPSET} and later)`;
    } catch (err) {
      throw new PrepareError((err as Error).message);
    }
  }
  validateGraph(model);
  const inputs = dataInputNames(model);
  let tokenizer: WordTokenizer | undefined;
  if (options.tokenizerPath) {
    try {
      tokenizer = WordTokenizer.load(options.tokenizerPath);
    } catch (err) {
      throw new PrepareError((err as Error).message);
    }
    const { ids, mask } = tokenizer.file.inputNames;
    if (inputs.length !== 2 || !inputs.includes(ids) || !inputs.includes(mask)) {
      throw new PrepareError(`the tokenizer fills inputs '${ids}' and '${mask}', but the model's data inputs are ${inputs.join(', ')}`);
    }
  } else if (inputs.length !== 1) {
    throw new PrepareError(
      `the model has ${inputs.length} data inputs (${inputs.join(', ')}); a model with side inputs (token ids + attention mask) needs --tokenizer`,
    );
  }
  const inputName = tokenizer ? tokenizer.file.inputNames.ids : inputs[0]!;
  let choice: OutputChoice;
  try {
    choice = chooseOutput(model, options.output);
  } catch (err) {
    throw new PrepareError((err as Error).message);
  }
  // NOTE: the package serves one answer; the other outputs (and what only they need) are dropped.
  if ((model.graph!.output ?? []).length > 1) pruneToOutput(model, choice.name);
  makeBatchDynamic(model);
  const castInputs = tokenizer ? [] : castUint8Inputs(model);
  try {
    // Loading is the check (every op has a kernel); unoptimised, it does not copy the weights into fused or pre-packed forms.
    const session = await ort.InferenceSession.create(encodeModel(model), {
      logSeverityLevel: 3,
      graphOptimizationLevel: 'disabled',
      enableCpuMemArena: false,
    });
    await session.release();
  } catch (err) {
    throw new PrepareError(runtimeRefusal(model, err));
  }
  const declared = (model.graph!.input ?? []).find((i) => i.name === inputName)!.type?.tensorType?.shape?.dim ?? [];
  const fixedDim = (d: (typeof declared)[number]) =>
    d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue.toString()) > 0 ? Number(d.dimValue.toString()) : undefined;
  // A folder of images is laid out as the input wants it (channels first or last, size).
  const imageShape = declared.slice(1).map(fixedDim);
  let dataset: Dataset;
  try {
    dataset = loadDataset(
      options.datasetPath,
      tokenizer ? { tokenizer } : imageShape.every((d) => d !== undefined) ? { imageShape: imageShape as number[] } : {},
    );
  } catch (err) {
    throw new PrepareError((err as Error).message);
  }
  if (tokenizer && !dataset.text) throw new PrepareError(`--tokenizer was given but ${options.datasetPath} is not a text dataset`);
  if (!tokenizer && dataset.text) throw new PrepareError(`${options.datasetPath} is a text dataset: pass the model's tokenizer with --tokenizer`);
  // Dynamic dimensions (a sequence length) accept whatever the dataset holds.
  const expected = declared.slice(1).map((d, i) => fixedDim(d) ?? dataset.sampleShape[i] ?? NaN);
  // The same shape, unit axes added or dropped, or an image in the other channel order (sample-layout.ts).
  const datasetShape = [...dataset.sampleShape];
  const fit = fitSamples(dataset, expected);
  if (!fit) {
    throw new PrepareError(
      `dataset samples have shape [${datasetShape.join(',')}] but the model's input '${inputName}' expects [${expected.join(',')}] per sample`,
    );
  }
  const layoutNote =
    fit.how === 'transposed' ? `dataset images [${datasetShape.join(',')}] transposed to the input's channel order [${expected.join(',')}]` : undefined;
  if (options.labels === 'truth' && !dataset.labels)
    throw new PrepareError(`dataset ${dataset.name} has no labels: use --labels model (the default) to train ramps on the model's own predictions`);
  const result: Awaited<ReturnType<typeof ingest>> = {
    model,
    dataset,
    inputName,
    outputName: choice.name,
    outputChoice: choice.why,
    castInputs,
    inputNotes: [
      ...(upgradeNote ? [upgradeNote] : []),
      ...castInputs.map((name) => `input '${name}' is uint8: the package takes it as float32 pixel values (0-255) and casts them back inside`),
      ...(layoutNote ? [layoutNote] : []),
    ],
  };
  if (tokenizer) result.tokenizer = tokenizer;
  return result;
}

/**
 * Samples the segment chain is checked on against the whole model: 512, or as many as 64 MiB of
 * input holds (at least 16): enough to catch a wrong cut, without running an ImageNet-sized model
 * a thousand times.
 */
function verifiedSamples(sampleShape: readonly number[]): number {
  const sampleBytes = 4 * sampleShape.reduce((a, b) => a * Math.max(1, b), 1);
  return Math.max(16, Math.min(512, Math.floor((64 * 2 ** 20) / sampleBytes)));
}

/**
 * Verification stops after this long once MIN_VERIFIED_SAMPLES are checked: the chain is the same
 * arithmetic as the model, so a mismatch shows on the first samples, and a BERT-base-shaped
 * encoder spent over 3 minutes on 512 (the whole model and the chain, each ~0.15 s a sample).
 */
const VERIFY_BUDGET_MS = 20_000;
const MIN_VERIFIED_SAMPLES = 16;

/** Step 3: the chain over every site must reproduce the model. */
export async function verifySegmenting(
  model: ModelProto,
  segments: Segment[],
  inputName: string,
  outputName: string,
  dataset: Dataset,
  range: { start: number; end: number },
) {
  // No memory arena: each segment's session would keep one at its run's peak (a BERT-base-shaped
  // encoder's 27 segments at 100 sequences of 128 held 12 GB); without, a run's memory is freed.
  const chain = await SegmentChain.create(segments, { intraOpNumThreads: 1, logSeverityLevel: 3, enableCpuMemArena: false });
  const whole = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1, logSeverityLevel: 3, enableCpuMemArena: false });
  let maxAbsDiff = 0;
  let maxAbsOutput = 0;
  let agree = 0;
  let numSamples = 0;
  // Batches as feature extraction sizes them: a run's activations scale with the batch (64
  // ImageNet-sized samples held over 10 GB across the model and the segments when they kept arenas).
  const batch = featureBatchSize(dataset.sampleShape);
  const beganNs = monotonicNowNs();
  try {
    for (let start = range.start; start < range.end; start += batch) {
      if (numSamples >= MIN_VERIFIED_SAMPLES && monotonicNowNs() - beganNs > VERIFY_BUDGET_MS * 1e6) break;
      const feeds = sampleFeeds(inputName, dataset, start, Math.min(batch, range.end - start));
      const a = (await whole.run(feeds))[outputName]!;
      const b = (await chain.run(feeds))[outputName]!;
      const [n, k] = [a.dims[0]!, a.dims[1]!];
      const x = a.data as Float32Array;
      const y = b.data as Float32Array;
      for (let i = 0; i < n; i++) {
        let ax = 0;
        let bx = 0;
        for (let c = 0; c < k; c++) {
          maxAbsDiff = Math.max(maxAbsDiff, Math.abs(x[i * k + c]! - y[i * k + c]!));
          maxAbsOutput = Math.max(maxAbsOutput, Math.abs(x[i * k + c]!));
          if (x[i * k + c]! > x[i * k + ax]!) ax = c;
          if (y[i * k + c]! > y[i * k + bx]!) bx = c;
        }
        if (ax === bx) agree++;
      }
      numSamples += n;
    }
  } finally {
    await chain.release();
    await whole.release();
  }
  const result = { maxAbsDiff, predictionAgreement: agree / numSamples, numSamples };
  // Float32 rounding grows with the outputs' scale (an MNIST CNN fed pixels 0-255 has logits in
  // the thousands, and kernels that sum in another order differ there by ~1e-6 of that); a wrong
  // cut differs by the outputs' own scale.
  const toleranceAbs = Math.max(1e-3, 1e-5 * maxAbsOutput);
  if (maxAbsDiff > toleranceAbs || result.predictionAgreement < 1) {
    throw new PrepareError(
      `the segment chain does not reproduce the model: max |diff| ${maxAbsDiff} (tolerance ${toleranceAbs.toPrecision(3)} ` +
        `at outputs up to ${maxAbsOutput.toPrecision(4)}), prediction agreement ${result.predictionAgreement}`,
    );
  }
  return result;
}

/**
 * Saves onnxruntime's offline optimisation of a graph at `level`, but never beyond 'extended':
 * 'all' adds layout changes for this CPU's vector width that compute garbage on a CPU of another
 * (onnx/portable-graph.ts). A chain measured fastest at 'all' is saved at 'extended' and the
 * worker applies 'all' when it loads it (`compile.chainOptimizationLevel`), on its own CPU.
 */
async function compile(bytes: Uint8Array, optimizedPath: string, level: ChainOptimizationLevel = 'extended'): Promise<void> {
  const session = await ort.InferenceSession.create(bytes, {
    graphOptimizationLevel: level === 'all' ? 'extended' : level,
    optimizedModelFilePath: optimizedPath,
    logSeverityLevel: 3,
    intraOpNumThreads: 1,
  });
  await session.release();
  const found = hostSpecificNodes(decodeModel(readFileSync(optimizedPath)));
  if (found > 0) throw new PrepareError(`${basename(optimizedPath)}: onnxruntime saved ${found} CPU-specific layout nodes; the copy would not travel`);
}

export async function preparePackage(options: PrepareOptions): Promise<PrepareReport> {
  const began = Date.now();
  const progress = options.onProgress;

  progress('ingest', 0, 1);
  const { model, dataset, inputName, outputName, outputChoice, castInputs, inputNotes, tokenizer } = await ingest(options);
  const split = bootstrapSplit(dataset.numSamples, options.bootstrapFraction, options.trainVal[0], options.trainVal[1]);
  if (split.train.end - split.train.start < 10 || split.validation.end - split.validation.start < 10) {
    throw new PrepareError(`bootstrap split too small: ${split.train.end} training and ${split.validation.end - split.validation.start} validation samples`);
  }
  progress('ingest', 1, 1);

  // 2. sites
  progress('sites', 0, 1);
  const probeOf = (feeds: Record<string, ort.Tensor>) =>
    Object.entries(feeds).map(([name, t]) => ({ name, shape: [...t.dims], data: t.data as Float32Array | BigInt64Array }));
  const probe = probeOf(sampleFeeds(inputName, dataset, 0, 2));
  // Text: a second probe at half the length tells which dimensions follow the sequence length.
  const altProbe = tokenizer ? probeOf(trimTokens(sampleFeeds(inputName, dataset, 0, 2), Math.max(2, dataset.sampleShape[0]! >> 1))) : undefined;
  const { sites, types } = await findRampSites(model, probe, inputName, altProbe);
  if (sites.length === 0) throw new PrepareError('the model has no usable ramp site (no single-tensor cut with a [N,C,H,W] or [N,T,D] activation)');
  progress('sites', 1, 1);

  // 3. segments at every site, verified
  progress('verify segments', 0, 1);
  const fineSegments = segmentModel(model, sites, types, inputName);
  const verification = await verifySegmenting(model, fineSegments, inputName, outputName, dataset, {
    start: 0,
    end: Math.min(split.validation.end, verifiedSamples(dataset.sampleShape)),
  });
  progress('verify segments', 1, 1);

  // 4. features, heads, validation
  const bootstrap = { start: 0, end: split.validation.end };
  const features = await extractSiteFeatures(model, inputName, outputName, sites, dataset, bootstrap, (d, t) => progress('features', d, t));
  const numTrain = split.train.end;
  const labels = options.labels === 'truth' ? dataset.labels!.subarray(0, bootstrap.end) : features.modelPredictions;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! < 0 || labels[i]! >= features.numClasses)
      throw new PrepareError(`label ${labels[i]} of sample ${i} is outside the model's ${features.numClasses} classes`);
  }
  const finalVal = features.modelPredictions.subarray(numTrain);
  const teacher = features.modelLogits.subarray(0, numTrain * features.numClasses);
  const valLabels = dataset.labels?.subarray(numTrain, bootstrap.end);
  type Candidate = TrainedHead & { site: RampSite; training: 'distilled' | 'labels'; outputs: RampOutputs; validation: RampValidation };
  const trained: (Candidate & { candidateExitFractions: { distilled: number; labels: number } })[] = [];
  const numHeads = 2 * sites.length;
  progress('train ramps', 0, numHeads);
  for (const site of sites) {
    const dim = features.dims.get(site.id)!;
    const all = features.features.get(site.id)!;
    // Large heads (many classes × wide features, wide sequence poolers) train in onnxruntime (native-head-trainer.ts).
    const native = headTrainingWork(site.kind, numTrain, dim, features.numClasses, DEFAULT_TRAIN_OPTIONS.epochs) > LARGE_HEAD_WORK;
    // Two candidates per site, distilled from the model's logits and trained on the labels alone;
    // the validation split keeps the one that exits more at the accuracy budget (distillation
    // wins at most fmnist-resnet sites, hard labels at most mnist-cnn and binary text sites).
    const candidates: Candidate[] = [];
    for (const training of ['distilled', 'labels'] as const) {
      const trainOptions = { seed: options.seed * 1000 + site.id, ...(training === 'labels' ? { distillWeight: 0 } : {}) };
      const trainFeatures = all.subarray(0, numTrain * dim);
      const trainLabels = labels.subarray(0, numTrain);
      const result = native
        ? await trainHeadNative(site.kind, trainFeatures, trainLabels, dim, features.numClasses, trainOptions, teacher)
        : trainHead(site.kind, trainFeatures, trainLabels, dim, features.numClasses, trainOptions, teacher);
      // The head pools exactly as the features were pooled.
      if (site.kind === 'feature-map') result.head.pool = gridPooling(site.shape[2]!, site.shape[3]!);
      const heldOut = all.subarray(numTrain * dim);
      const outputs = native ? await evaluateHeadNative(result.head, heldOut, dim) : evaluateHead(result.head, heldOut, dim);
      // Ground truth, where the dataset has it, for reporting accuracy whatever the heads learned from.
      const validation = validateRamp(outputs, finalVal, valLabels, options.accuracyBudget);
      candidates.push({ site, ...result, training, outputs, validation });
      progress('train ramps', trained.length * 2 + candidates.length, numHeads);
      // Let the progress line and signals through between heads.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const [distilled, plain] = candidates as [Candidate, Candidate];
    const kept = plain.validation.exitFraction > distilled.validation.exitFraction ? plain : distilled;
    trained.push({ ...kept, candidateExitFractions: { distilled: distilled.validation.exitFraction, labels: plain.validation.exitFraction } });
  }

  // 5. profiles
  const makeFeeds = (b: number) => sampleFeeds(inputName, dataset, 0, b);
  const profileSteps = 2 + fineSegments.length;
  progress('profile', 0, profileSteps);
  const wholeMs = await profileModel(encodeModel(model), makeFeeds, options.profile);
  progress('profile', 1, profileSteps);
  const headBytes = new Map(trained.map((t) => [t.site.id, headModelBytes(t.site.id, t.site.tensor, t.site.shape, t.site.elemType, t.head)]));
  const fineMs = await profileSegments(fineSegments, makeFeeds, options.profile, {
    heads: new Map(trained.map((t) => [t.site.tensor, headBytes.get(t.site.id)!])),
    onSegment: (done) => progress('profile', 1 + done, profileSteps),
  });
  const headCostMs = new Map(trained.map((t) => [t.site.id, fineMs.headMs.get(t.site.tensor)!]));
  const siteUpToMs: Record<string, Record<string, number>> = {};
  for (const site of sites) siteUpToMs[site.id] = {};
  for (const b of options.batchSizes) {
    // Per-run overhead makes the chain slower than the model; scale the prefix sums to the model.
    const scale = wholeMs[b]! / fineMs.perSegment.reduce((s, seg) => s + seg[b]!, 0);
    let prefix = 0;
    sites.forEach((site, i) => {
      prefix += fineMs.perSegment[i]![b]!;
      siteUpToMs[site.id]![b] = prefix * scale;
    });
  }
  progress('profile', profileSteps, profileSteps);

  // 6. initial ramp choice
  const ref = options.referenceBatchSize;
  const candidates: RampCandidate[] = trained.map((t) => ({
    siteId: t.site.id,
    upToMs: siteUpToMs[t.site.id]![ref]!,
    costMs: headCostMs.get(t.site.id)![ref]!,
    outputs: t.outputs,
  }));
  const pointSelection = selectRamps(candidates, finalVal, wholeMs[ref]!, {
    maxRamps: options.maxRamps,
    overheadBudget: options.overheadBudget,
    accuracyBudget: options.accuracyBudget,
  });
  const selection = boundedSelection(pointSelection, candidates, finalVal, wholeMs[ref]!, options.accuracyBudget);

  // 7. write files
  progress('write package', 0, 1);
  rmSync(options.outDir, { recursive: true, force: true });
  mkdirSync(options.outDir, { recursive: true });
  const write = async (file: string, bytes: Uint8Array) => {
    writeFileSync(join(options.outDir, file), bytes);
    const optimized = file.replace(/\.onnx$/, '.opt.onnx');
    await compile(bytes, join(options.outDir, optimized));
    return optimized;
  };
  for (const file of options.include) copyFileSync(file, join(options.outDir, basename(file)));
  if (tokenizer) tokenizer.save(join(options.outDir, 'tokenizer.json'));
  const modelFile = 'model.onnx';
  writeFileSync(join(options.outDir, modelFile), encodeModel(model));
  await compile(encodeModel(model), join(options.outDir, 'model.opt.onnx'));
  const chosenSites = selection.chosen.map((id) => sites.find((s) => s.id === id)!);
  const chosenSegments = segmentModel(model, chosenSites, types, inputName);
  // The chain runs at whichever optimisation level is faster on it, measured: fusions that help a
  // whole model can hurt its segments (the text model's chain was 1.5x slower at 'extended').
  const chainByLevel = {} as Record<ChainOptimizationLevel, Record<number, number>>;
  for (const level of CHAIN_LEVELS) chainByLevel[level] = await profileChain(chosenSegments, makeFeeds, options.profile, level);
  const totalMs = (level: ChainOptimizationLevel) => options.batchSizes.reduce((sum, b) => sum + chainByLevel[level][b]!, 0);
  const chainLevel = CHAIN_LEVELS.reduce((best, level) => (totalMs(level) < totalMs(best) ? level : best));
  const chainMs = chainByLevel[chainLevel];
  const segments = [];
  for (const [i, seg] of chosenSegments.entries()) {
    // Only the optimised copy is kept: segments for any ramp set can be rebuilt from model.onnx.
    const file = `segment_${i}.opt.onnx`;
    await compile(encodeModel(seg.model), join(options.outDir, file), chainLevel);
    segments.push({ file, inputs: seg.inputs, outputs: seg.outputs, endsAtSite: chosenSites[i]?.id ?? null });
  }
  const ramps: RampEntry[] = [];
  for (const t of trained) {
    const file = `ramp_${t.site.id}.onnx`;
    ramps.push({
      siteId: t.site.id,
      file,
      optimizedFile: await write(file, headBytes.get(t.site.id)!),
      outputName: headOutputName(t.site.id),
      numClasses: features.numClasses,
      trainAccuracy: t.trainAccuracy,
      training: t.training,
      candidateExitFractions: t.candidateExitFractions,
      validation: t.validation,
      costMs: headCostMs.get(t.site.id)!,
    });
  }

  // 8. manifest
  const manifest: ModelManifest = {
    schemaVersion: 2,
    name: options.name,
    file: 'model.onnx',
    inputs: tokenizer
      ? [tokenizer.file.inputNames.ids, tokenizer.file.inputNames.mask].map((name) => ({ name, dtype: 'int64' as const, shape: [-1, -1] }))
      : [{ name: inputName, dtype: 'float32', shape: [-1, ...dataset.sampleShape] }],
    outputs: [{ name: outputName, dtype: 'float32', shape: [-1, features.numClasses] }],
    batchSizes: options.batchSizes,
    ...(tokenizer ? { sequence: { buckets: sequenceBucketsFor(tokenizer.maxTokens, options.sequenceBuckets), tokenizer: 'tokenizer.json' } } : {}),
    source: { model: options.modelPath, dataset: options.datasetPath, preparedBy: 'escapement prepare', included: options.include.map((f) => basename(f)) },
    earlyExit: {
      primaryInput: inputName,
      finalOutput: outputName,
      numClasses: features.numClasses,
      sites: sites.map((s) => ({
        id: s.id,
        tensor: s.tensor,
        sideTensors: s.sideTensors,
        ...(s.sideTensors.length > 0
          ? { sideTensorTypes: Object.fromEntries(s.sideTensors.map((t) => [t, { elemType: types.get(t)!.elemType, shape: types.get(t)!.dims }])) }
          : {}),
        kind: s.kind,
        shape: s.shape,
        elemType: s.elemType,
        producer: s.producerName,
      })),
      ramps,
      chosenRamps: selection.chosen,
      initialThresholds: Object.fromEntries(selection.chosen.map((id, i) => [id, selection.thresholds[i]!])),
      segments,
      profile: { batchSizes: options.batchSizes, wholeMs, siteUpToMs, chainMs, referenceBatchSize: ref },
      selection: {
        maxRamps: options.maxRamps,
        overheadBudget: options.overheadBudget,
        accuracyBudget: options.accuracyBudget,
        savingMs: selection.savingMs,
        agreement: selection.agreement,
        exitFractions: selection.exitFractions,
      },
      dataset: {
        name: dataset.name,
        numSamples: dataset.numSamples,
        bootstrapFraction: options.bootstrapFraction,
        trainVal: options.trainVal,
        train: split.train,
        validation: split.validation,
        serveStart: split.serve.start,
        labels: options.labels,
      },
      seed: options.seed,
      compile: {
        optimizationLevel: 'extended',
        chainOptimizationLevel: chainLevel,
        chainMsByLevel: Object.fromEntries(CHAIN_LEVELS.map((l) => [l, chainByLevel[l]])),
        onnxruntime: ONNXRUNTIME_VERSION,
        device: 'cpu',
      },
      verification,
    },
  };
  writeFileSync(join(options.outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const folderParts = options.outDir.replace(/\/+$/, '').split('/');
  loadModelEntry(folderParts.slice(0, -1).join('/') || '.', folderParts.at(-1)!); // the package must load
  progress('write package', 1, 1);

  const reportOf = (t: (typeof trained)[number]): RampReport => {
    const report: RampReport = {
      siteId: t.site.id,
      producer: t.site.producerName,
      shape: t.site.shape,
      trainAccuracy: t.trainAccuracy,
      training: t.training,
      agreement: t.validation.agreement,
      threshold: t.validation.threshold,
      exitFraction: t.validation.exitFraction,
      agreementAtThreshold: t.validation.agreementAtThreshold,
      costMsAtReference: headCostMs.get(t.site.id)![ref]!,
      chosen: selection.chosen.includes(t.site.id),
    };
    if (t.validation.accuracy !== undefined) report.validationAccuracy = t.validation.accuracy;
    return report;
  };
  return {
    manifest,
    outputChoice,
    castInputs,
    inputNotes,
    numSites: sites.length,
    ramps: trained.map(reportOf),
    selection,
    wholeMsAtReference: wholeMs[ref]!,
    verification,
    seconds: (Date.now() - began) / 1000,
    ...peakRss(),
  };
}

/** Token feeds cut to their first `length` positions (the second probe of a text model). */
function trimTokens(feeds: Record<string, ort.Tensor>, length: number): Record<string, ort.Tensor> {
  return Object.fromEntries(
    Object.entries(feeds).map(([name, t]) => {
      const [n, full] = [t.dims[0]!, t.dims[1]!];
      const data = new BigInt64Array(n * length);
      for (let r = 0; r < n; r++) data.set((t.data as BigInt64Array).subarray(r * full, r * full + length), r * length);
      return [name, new ort.Tensor('int64', data, [n, length])];
    }),
  );
}

/** Sequence-length buckets: the given ones (each ≤ maxTokens), or powers of two from 16, with maxTokens last. */
function sequenceBucketsFor(maxTokens: number, given: number[] | undefined): number[] {
  const buckets = given ?? [16, 32, 64, 128, 256, 512].filter((b) => b < maxTokens);
  if (buckets.some((b) => !Number.isInteger(b) || b < 1 || b > maxTokens))
    throw new PrepareError(`sequence buckets must be integers in [1, ${maxTokens}], got ${buckets.join(', ')}`);
  return [...new Set([...buckets, maxTokens])].sort((a, b) => a - b);
}

/**
 * Profiles each segment of a chain, fed with real activations, and each head in `heads` (keyed by
 * the site tensor it reads) on the real activation there while it is at hand: timing heads on
 * activations of their own made a BERT-base-shaped encoder run its chain up to every one of 26
 * sites, minutes of work.
 *
 * Memory: the activations are carried forward one segment at a time, for every batch size, and a
 * tensor is dropped once no later segment reads it; only one segment's session is open at a time.
 * NOTE: holding every boundary's activations for every batch size took 3.7 GB for an
 * ImageNet-sized ResNet-50, and keeping every segment's session open at once (each with its own
 * arena) 5.6 GB.
 */
async function profileSegments(
  segments: Segment[],
  makeFeeds: (b: number) => Record<string, ort.Tensor>,
  options: ProfileOptions,
  { heads, onSegment }: { heads: Map<string, Uint8Array>; onSegment: (done: number) => void },
) {
  const lastReader = new Map<string, number>();
  for (const [i, segment] of segments.entries()) for (const name of segment.inputs) lastReader.set(name, i);
  const envs = new Map<number, Record<string, ort.Tensor>>(options.batchSizes.map((b) => [b, { ...makeFeeds(b) }]));
  const perSegment: Record<number, number>[] = [];
  const headMs = new Map<string, Record<number, number>>();
  for (const [i, segment] of segments.entries()) {
    const session = await openSession(encodeModel(segment.model));
    try {
      const feedsOf = (b: number) => Object.fromEntries(segment.inputs.map((n) => [n, envs.get(b)![n]!]));
      perSegment.push(await timeBatches((b) => session.run(feedsOf(b)), options));
      for (const b of options.batchSizes) Object.assign(envs.get(b)!, await session.run(feedsOf(b)));
    } finally {
      await session.release();
    }
    for (const name of segment.outputs) {
      const head = heads.get(name);
      if (head && !headMs.has(name)) headMs.set(name, await profileModel(head, (b) => ({ [name]: envs.get(b)![name]! }), options));
    }
    for (const env of envs.values()) for (const name of Object.keys(env)) if ((lastReader.get(name) ?? -1) <= i) delete env[name];
    onSegment(i + 1);
  }
  return { perSegment, headMs };
}

/** Median ms per batch size of a chain run end to end, its sessions at optimisation `level`, as a worker runs it. */
async function profileChain(
  segments: Segment[],
  makeFeeds: (b: number) => Record<string, ort.Tensor>,
  options: ProfileOptions,
  level: ChainOptimizationLevel,
): Promise<Record<number, number>> {
  const chain = await SegmentChain.create(segments, {
    intraOpNumThreads: 1,
    logSeverityLevel: 3,
    graphOptimizationLevel: level,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  } as ort.InferenceSession.SessionOptions);
  try {
    return await timeBatches((b) => chain.run(makeFeeds(b)), options);
  } finally {
    await chain.release();
  }
}

export type { TensorType };
