/**
 * Runs ONNX models with onnxruntime: creates every session, profiles a model's batch sizes at
 * LOAD, and runs batches whole or, for early-exit packages, as a chain of segments with ramp
 * heads that answer confident rows on the way (exit-runner.ts).
 *
 * NOTE: `session.run()` and `InferenceSession.create()` block the thread that calls them: the
 * worker constructs this in its inference thread (inference-thread.ts), so that the worker's main
 * thread stays free for sockets, timers and heartbeats.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { EarlyExitSection } from '../shared/early-exit-manifest.js';
import type { BatchProfileEntry, EarlyExitPlan, RampsWarmup } from '../shared/protocol.js';
import { decodeModel, encodeModel, onnx, type ModelProto } from '../onnx/onnx-proto.js';
import { segmentModel } from '../onnx/segmenter.js';
import { chainWarmupBatchSizes } from '../shared/chain-warmup.js';
import { hostSpecificNodes } from '../onnx/portable-graph.js';
import { bestClass, runChainWithExits, type ChainStep, type RampHead } from './exit-runner.js';
import { runFused, type FusedModel } from './fused-runner.js';
import {
  anchorBatchSizes,
  interpolateTiming,
  MAX_TIMING_NS_PER_SIZE,
  MIN_TIMED_RUNS_PER_SIZE,
  tooSlowToTime,
  type Timing,
} from '../shared/batch-size-sampling.js';
import { monotonicNowNs } from '../shared/clock.js';
import { EscapementError, ErrorCode } from '../shared/error-codes.js';
import type { ModelEntry } from '../shared/model-manifest.js';
import { DTYPE_BYTES, numElements, type DType, type Tensor, type TensorSpec } from '../shared/tensor.js';
import type { Executor, InferOptions, InferOutcome, LoadOutcome } from './executor.js';
import type { SessionSettings } from '../onnx/session-options.js';
import { createDeviceSession } from '../onnx/device-sessions.js';

const ORT_VERSION = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;

/**
 * What an early-exit package keeps loaded: every ramp head, chains per active ramp set, and
 * (release mode) the whole model with a ramp set's heads fused in.
 */
interface EarlyExitState {
  settings: SessionSettings;
  section: EarlyExitSection;
  folder: string;
  heads: Map<number, RampHead>;
  chains: Map<string, ChainStep[]>;
  fused: Map<string, FusedModel>;
  /** The model's inputs and the batch shapes a chain is warmed at before first use. */
  inputs: TensorSpec[];
  maxBatchSize: number;
  seqLength: number;
}

/**
 * Whether the package's compiled copies (`*.opt.onnx`: onnxruntime's offline optimisation, which
 * fuses nodes into kernels of the provider it ran on) fit this worker: the same onnxruntime
 * version and the device they were compiled for. Otherwise the device-neutral copies are used
 * (model.onnx, ramp_N.onnx, segments cut from model.onnx here).
 */
export function compiledCopiesFit(ee: Pick<EarlyExitSection, 'compile'>, device: string, ortVersion = ORT_VERSION): boolean {
  return ee.compile.onnxruntime === ortVersion && deviceKind(ee.compile.device) === deviceKind(device);
}

/** `cuda:1` and `cuda:0` share a kind: a compiled copy fits any device of its kind. */
function deviceKind(device: string): string {
  return device.split(':')[0]!;
}

function compiledFile(state: { section: EarlyExitSection; settings: SessionSettings }, plain: string, optimized: string | undefined): string {
  return optimized && compiledCopiesFit(state.section, state.settings.device) ? optimized : plain;
}

async function loadEarlyExit(
  settings: SessionSettings,
  folder: string,
  section: EarlyExitSection,
  inputs: TensorSpec[],
  maxBatchSize: number,
  seqLength: number,
): Promise<EarlyExitState> {
  const heads = new Map<number, RampHead>();
  for (const ramp of section.ramps) {
    const site = section.sites.find((s) => s.id === ramp.siteId)!;
    const session = await createDeviceSession(join(folder, compiledFile({ section, settings }, ramp.file, ramp.optimizedFile)), settings);
    heads.set(ramp.siteId, { session, input: site.tensor, output: ramp.outputName });
  }
  const state: EarlyExitState = { settings, section, folder, heads, chains: new Map(), fused: new Map(), inputs, maxBatchSize, seqLength };
  await chainFor(state, section.chosenRamps, 'full');
  return state;
}

/**
 * The segment chain ending at the given sites: the package's own segments for its chosen ramps
 * (when compiled by this runtime and free of CPU-specific layout), otherwise cut from model.onnx here.
 */
async function chainFor(state: EarlyExitState, siteIds: number[], warmup: RampsWarmup): Promise<ChainStep[]> {
  const key = siteIds.join(',');
  const cached = state.chains.get(key);
  if (cached) return cached;
  const { section } = state;
  const steps: ChainStep[] = [];
  const segments: { model: ModelProto; inputs: string[]; outputs: string[]; endsAtSite: number | null }[] = [];
  if (key === section.chosenRamps.join(',') && compiledCopiesFit(section, state.settings.device)) {
    for (const seg of section.segments)
      segments.push({ model: decodeModel(readFileSync(join(state.folder, seg.file))), inputs: seg.inputs, outputs: seg.outputs, endsAtSite: seg.endsAtSite });
    // Packages prepared before `prepare` capped its saved copies at 'extended' may carry the
    // preparing CPU's blocked layout in their segments (onnx/portable-graph.ts): cut from model.onnx.
    if (segments.some((seg) => hostSpecificNodes(seg.model) > 0)) segments.length = 0;
  }
  if (segments.length === 0) {
    const model = decodeModel(readFileSync(join(state.folder, 'model.onnx')));
    const sites = siteIds.map((id) => section.sites.find((s) => s.id === id)!);
    const types = new Map(section.sites.map((s) => [s.tensor, { elemType: s.elemType, dims: s.shape }]));
    for (const s of section.sites) for (const [name, t] of Object.entries(s.sideTensorTypes ?? {})) types.set(name, { elemType: t.elemType, dims: t.shape });
    const cuts = sites.map((s) => ({ tensor: s.tensor, sideTensors: s.sideTensors, afterNode: -1, producerName: s.producer }));
    for (const [i, seg] of segmentModel(model, cuts, types, section.primaryInput).entries()) {
      segments.push({ model: seg.model, inputs: seg.inputs, outputs: seg.outputs, endsAtSite: sites[i]?.id ?? null });
    }
  }
  for (const seg of segments) {
    // Fuse the site's ramp head into the segment: one run() yields the cut tensor and the probabilities.
    const ramp = seg.endsAtSite === null ? undefined : section.ramps.find((r) => r.siteId === seg.endsAtSite);
    if (ramp) fuseHead(seg.model, decodeModel(readFileSync(join(state.folder, ramp.file))), ramp.outputName);
    const session = await createDeviceSession(encodeModel(seg.model), state.settings, {
      graphOptimizationLevel: section.compile.chainOptimizationLevel ?? 'all',
    });
    steps.push({ session, inputs: seg.inputs, outputs: seg.outputs, endsAtSite: seg.endsAtSite, ...(ramp ? { headOutput: ramp.outputName } : {}) });
  }
  await warmChain(steps, state, warmup);
  state.chains.set(key, steps);
  return steps;
}

/**
 * The whole model with the given sites' ramp heads appended as extra outputs (one session; see
 * fused-runner.ts), cut from model.onnx and warmed like a chain.
 */
async function fusedFor(state: EarlyExitState, siteIds: number[], warmup: RampsWarmup): Promise<FusedModel> {
  const key = siteIds.join(',');
  const cached = state.fused.get(key);
  if (cached) return cached;
  const { section } = state;
  const model = decodeModel(readFileSync(join(state.folder, 'model.onnx')));
  const heads: FusedModel['heads'] = [];
  for (const siteId of siteIds) {
    const ramp = section.ramps.find((r) => r.siteId === siteId);
    if (!ramp) throw new Error(`site ${siteId} has no ramp head in this package`);
    fuseHead(model, decodeModel(readFileSync(join(state.folder, ramp.file))), ramp.outputName);
    heads.push({ siteId, output: ramp.outputName });
  }
  const session = await createDeviceSession(encodeModel(model), state.settings);
  const fused = { session, heads };
  await warmChain([{ session, inputs: state.inputs.map((s) => s.name), outputs: [], endsAtSite: null }], state, warmup);
  state.fused.set(key, fused);
  return fused;
}

/**
 * Runs a new chain before it serves, as its RAMPS (or LOAD) says. `full`, for a model that has not
 * served yet: every batch size up to the largest profiled one, twice; without it the first few
 * hundred INFERs on a chain ran up to 1.7x slower than later ones (onnxruntime's first runs per
 * shape and the thread's cold code), and a planner trusting the warmed whole-model profile missed
 * deadlines for the first seconds of service. `smoke`, for a ramp change during service: one run
 * at batch 1, so that a chain that cannot run fails its RAMPS rather than an INFER. The thread is
 * warm by then, and what stays cold costs a new shape's first run 0.5-1.5 ms once (fmnist-resnet
 * on the development VM), where the full warm-up took the worker 300 ms (600 ms with release's
 * fused model too), in which its share of the load queued or was rejected: on two workers at
 * 70 % load, each ramp change cost ~500 rejected requests (bench:exits, the ramp adjuster's changes).
 */
async function warmChain(steps: readonly ChainStep[], state: EarlyExitState, warmup: RampsWarmup): Promise<void> {
  for (const batchSize of chainWarmupBatchSizes(warmup, state.maxBatchSize)) {
    const env: Record<string, ort.Tensor> = zeroInputs(state.inputs, batchSize, state.seqLength);
    for (const step of steps) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of step.inputs) feeds[name] = env[name]!;
      Object.assign(env, await step.session.run(feeds));
    }
  }
}

/** Appends a ramp head's nodes and weights to a segment graph and exposes its output. */
function fuseHead(segment: ModelProto, head: ModelProto, outputName: string): void {
  const graph = segment.graph!;
  const headGraph = head.graph!;
  graph.node = [...(graph.node ?? []), ...(headGraph.node ?? [])];
  graph.initializer = [...(graph.initializer ?? []), ...(headGraph.initializer ?? [])];
  graph.output = [...(graph.output ?? []), onnx.ValueInfoProto.create({ name: outputName })];
  // NOTE: heads use opset-13 operators whose semantics are unchanged in later opsets; a segment on
  // an older default opset keeps its own (GAP, Flatten, Gemm and 2-D Softmax behave the same).
}

async function releaseEarlyExit(state: EarlyExitState): Promise<void> {
  for (const head of state.heads.values()) await head.session.release();
  for (const chain of state.chains.values()) for (const step of chain) await step.session.release();
  for (const fused of state.fused.values()) await fused.session.release();
}

function argmaxRows(data: Float32Array, numRows: number): number[] {
  const k = data.length / Math.max(1, numRows);
  return Array.from({ length: numRows }, (_, r) => bestClass(data, r, k));
}

/** A release-mode INFER on the fused model: every row's full answer, the ramps' view as feedback. */
async function inferFused(entry: LoadedModel, feeds: Record<string, ort.Tensor>, numRequests: number, plan: EarlyExitPlan): Promise<InferOutcome> {
  const state = entry.earlyExit!;
  // Built by its RAMPS beforehand; a chain an INFER has to build serves at once (a smoke run).
  const fused = await fusedFor(
    state,
    plan.ramps.map((r) => r.siteId),
    'smoke',
  );
  const result = await runFused(fused, feeds, state.section.finalOutput, numRequests, monotonicNowNs);
  const spec = entry.outputs[0]!;
  return {
    outputs: [fromOrt(spec.name, spec.dtype, result.finalOutput)],
    feedback: result.feedback,
    stages: [{ name: 'fused', durationNs: result.durationNs, numRows: result.finalOutput.dims[0]! }],
  };
}

/** An INFER with ramps: runs the chain, reporting each exit as it happens. */
async function inferWithExits(
  entry: LoadedModel,
  feeds: Record<string, ort.Tensor>,
  batchSize: number,
  numRequests: number,
  plan: EarlyExitPlan,
  onExit: InferOptions['onExit'],
): Promise<InferOutcome> {
  const state = entry.earlyExit!;
  const chain = await chainFor(
    state,
    plan.ramps.map((r) => r.siteId),
    'smoke',
  );
  const config = { mode: plan.mode, thresholds: new Map(plan.ramps.map((r) => [r.siteId, r.threshold])), keepRows: new Set(plan.keepRows), numRequests };
  const result = await runChainWithExits(
    ort,
    chain,
    state.heads,
    feeds,
    batchSize,
    state.section.finalOutput,
    config,
    (event) => {
      const { probabilities, ...rest } = event;
      onExit?.({
        ...rest,
        atLocalNs: monotonicNowNs(),
        probabilities: new Uint8Array(probabilities.buffer.slice(probabilities.byteOffset, probabilities.byteOffset + probabilities.byteLength)),
      });
    },
    monotonicNowNs,
  );
  const spec = entry.outputs[0]!;
  const finalData = result.finalOutput.data as Float32Array;
  const finalPredictions = new Array<number>(numRequests).fill(-1);
  argmaxRows(finalData, result.finalRows.length).forEach((p, i) => {
    const row = result.finalRows[i]!;
    if (row < numRequests) finalPredictions[row] = p;
  });
  return {
    outputs: [fromOrt(spec.name, spec.dtype, result.finalOutput)],
    outputRows: result.finalRows,
    feedback: { ...result.feedback, finalPredictions },
    stages: result.stageNs.map((s) => ({ name: s.name, durationNs: s.durationNs, numRows: s.numRows })),
  };
}

/** Warm-up runs per batch size before timing (first ORT runs at a new shape are much slower). */
const NUM_WARMUP_RUNS = 3;
/** Timed runs per batch size: at least MIN, then up to MAX while the size's share of the budget lasts. */
const MIN_PROFILE_RUNS = MIN_TIMED_RUNS_PER_SIZE;
const MAX_PROFILE_RUNS = 15;
/**
 * Timing budget of one LOAD's profile, shared by its (batch size, bucket) pairs. A controller that
 * runs exact batches asks for every size up to its largest (16 sizes instead of 5), so the budget
 * is per LOAD rather than per size: fmnist-resnet's LOAD takes about 1.7 s with 16 sizes (1.0 s
 * with 5 at up to 300 ms each), instead of 2.9 s.
 */
const PROFILE_BUDGET_NS = 1_200_000_000;
const MAX_PROFILE_NS_PER_SIZE = MAX_TIMING_NS_PER_SIZE;

function typedArray(dtype: DType, buffer: ArrayBuffer, byteOffset: number, numElems: number): ort.Tensor['data'] {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer, byteOffset, numElems);
    case 'float64':
      return new Float64Array(buffer, byteOffset, numElems);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, numElems);
    case 'int32':
      return new Int32Array(buffer, byteOffset, numElems);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buffer, byteOffset, numElems);
    case 'int8':
      return new Int8Array(buffer, byteOffset, numElems);
  }
}

function toOrt(t: Tensor): ort.Tensor {
  // NOTE: a typed array view needs an aligned offset; copy the rare misaligned frame.
  const bytes = t.data.byteOffset % 8 === 0 ? t.data : new Uint8Array(t.data);
  const data = typedArray(t.dtype, bytes.buffer as ArrayBuffer, bytes.byteOffset, numElements(t.shape));
  return new ort.Tensor(t.dtype === 'bool' ? 'bool' : t.dtype, data as never, t.shape);
}

function fromOrt(name: string, dtype: DType, t: ort.Tensor): Tensor {
  const data = t.data as ArrayBufferView;
  // Copy into a fresh buffer that can be transferred; ORT owns its output memory.
  const copy = new Uint8Array(data.byteLength);
  copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return { name, dtype, shape: [...t.dims], data: copy };
}

function zeroInputs(inputs: TensorSpec[], batchSize: number, seqLength: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of inputs) {
    const shape = [batchSize, ...spec.shape.slice(1).map((d) => (d < 0 ? seqLength : d))];
    const buffer = new ArrayBuffer(numElements(shape) * DTYPE_BYTES[spec.dtype]);
    feeds[spec.name] = toOrt({ name: spec.name, dtype: spec.dtype, shape, data: new Uint8Array(buffer) });
  }
  return feeds;
}

/**
 * Median and p99 per batch size (text models: per batch size at every sequence bucket): the powers
 * of two timed, sizes between them timed too unless too slow to time (batch-size-sampling.ts).
 */
async function profile(
  session: ort.InferenceSession,
  inputs: TensorSpec[],
  batchSizes: number[],
  sequenceBuckets: number[] = [0],
): Promise<BatchProfileEntry[]> {
  const entries: BatchProfileEntry[] = [];
  const budgetPerSizeNs = Math.min(MAX_PROFILE_NS_PER_SIZE, PROFILE_BUDGET_NS / (sequenceBuckets.length * batchSizes.length));
  const sizes = [...new Set(batchSizes)].sort((a, b) => a - b);
  const anchors = anchorBatchSizes(sizes);
  for (const seqLength of sequenceBuckets) {
    const time = async (batchSize: number): Promise<Timing> => {
      const feeds = zeroInputs(inputs, batchSize, seqLength);
      // The first run at a shape pays its set-up; more warm-ups only while they are cheap against
      // the size's budget (a real-size model's batch of 16 takes ~0.3 s a run).
      const warmupStartNs = monotonicNowNs();
      for (let i = 0; i < NUM_WARMUP_RUNS; i++) {
        await session.run(feeds);
        if (monotonicNowNs() - warmupStartNs > budgetPerSizeNs / 2) break;
      }
      const samples: number[] = [];
      const beginNs = monotonicNowNs();
      while (samples.length < MAX_PROFILE_RUNS && (samples.length < MIN_PROFILE_RUNS || monotonicNowNs() - beginNs < budgetPerSizeNs)) {
        const t0 = monotonicNowNs();
        await session.run(feeds);
        samples.push(monotonicNowNs() - t0);
      }
      samples.sort((a, b) => a - b);
      return { durationNs: samples[samples.length >> 1]!, p99DurationNs: samples[Math.min(samples.length - 1, Math.ceil(samples.length * 0.99) - 1)]! };
    };
    const timed = new Map<number, Timing>();
    for (const b of anchors) timed.set(b, await time(b));
    for (const b of sizes) {
      if (timed.has(b)) continue;
      const estimate = interpolateTiming(b, timed);
      timed.set(b, tooSlowToTime(estimate.durationNs) ? estimate : await time(b));
    }
    for (const batchSize of batchSizes) entries.push({ batchSize, ...(seqLength > 0 ? { sequenceLength: seqLength } : {}), ...timed.get(batchSize)! });
  }
  return entries;
}

interface LoadedModel {
  session: ort.InferenceSession;
  outputs: TensorSpec[];
  earlyExit?: EarlyExitState;
}

export class OrtExecutor implements Executor {
  readonly device: string;
  private readonly sessions = new Map<string, LoadedModel>();

  constructor(private readonly settings: SessionSettings) {
    this.device = settings.device;
  }

  /** Fails with a clear message when the device's execution provider cannot create a session. */
  async probe(onnxBytes: Uint8Array): Promise<void> {
    const session = await createDeviceSession(onnxBytes, this.settings);
    await session.release();
  }

  async load(entry: ModelEntry, batchSizes: number[]): Promise<LoadOutcome> {
    const { manifest } = entry;
    const buckets = manifest.sequence?.buckets;
    const existing = this.sessions.get(manifest.name);
    // LOAD is idempotent: the controller may have lost track (a timed-out action); re-profile.
    if (existing) return { profile: await profile(existing.session, manifest.inputs, batchSizes, buckets), weightsBytes: entry.fileBytes };
    const rssBefore = process.memoryUsage().rss;
    let session: ort.InferenceSession;
    try {
      session = await createDeviceSession(entry.onnxPath, this.settings, { logId: manifest.name });
    } catch (err) {
      throw new EscapementError(ErrorCode.LOAD_FAILED, `could not create a session: ${(err as Error).message}`);
    }
    const rssDelta = process.memoryUsage().rss - rssBefore;
    try {
      const entries = await profile(session, manifest.inputs, batchSizes, buckets);
      const ee = manifest.earlyExit;
      const earlyExit = ee
        ? await loadEarlyExit(this.settings, dirname(entry.onnxPath), ee, manifest.inputs, Math.max(...batchSizes), buckets?.[0] ?? 0)
        : undefined;
      this.sessions.set(manifest.name, { session, outputs: manifest.outputs, ...(earlyExit ? { earlyExit } : {}) });
      return { profile: entries, weightsBytes: Math.max(entry.fileBytes, rssDelta) };
    } catch (err) {
      await session.release();
      throw new EscapementError(ErrorCode.LOAD_FAILED, `profiling failed: ${(err as Error).message}`);
    }
  }

  async unload(modelName: string): Promise<void> {
    const entry = this.sessions.get(modelName);
    if (!entry) throw new EscapementError(ErrorCode.UNLOAD_NOT_LOADED, `${modelName} is not loaded`);
    this.sessions.delete(modelName);
    await entry.session.release();
    if (entry.earlyExit) await releaseEarlyExit(entry.earlyExit);
  }

  async prepareRamps(modelName: string, siteIds: number[], fused = false, warmup: RampsWarmup = 'full'): Promise<void> {
    const entry = this.sessions.get(modelName);
    if (!entry?.earlyExit) throw new EscapementError(ErrorCode.RAMPS_NOT_LOADED, `${modelName} is not loaded with an early-exit package`);
    try {
      await chainFor(entry.earlyExit, siteIds, warmup);
      if (fused) await fusedFor(entry.earlyExit, siteIds, warmup);
    } catch (err) {
      throw new EscapementError(ErrorCode.RAMPS_FAILED, (err as Error).message);
    }
  }

  async infer(modelName: string, batchSize: number, inputs: Tensor[], options: InferOptions = {}): Promise<InferOutcome> {
    const entry = this.sessions.get(modelName);
    if (!entry) throw new EscapementError(ErrorCode.INFER_NOT_LOADED, `${modelName} is not loaded`);
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of inputs) feeds[t.name] = toOrt(t);
    try {
      if (options.earlyExit && options.earlyExit.ramps.length > 0) {
        if (!entry.earlyExit) throw new EscapementError(ErrorCode.INFER_INVALID_INPUT, `${modelName} has no early-exit package`);
        if (options.earlyExit.fused && options.earlyExit.mode === 'release')
          return await inferFused(entry, feeds, options.numRequests ?? batchSize, options.earlyExit);
        return await inferWithExits(entry, feeds, batchSize, options.numRequests ?? batchSize, options.earlyExit, options.onExit);
      }
      const t0 = monotonicNowNs();
      const results = await entry.session.run(feeds);
      const runNs = monotonicNowNs() - t0;
      const outputs = entry.outputs.map((spec) => fromOrt(spec.name, spec.dtype, results[spec.name]!));
      return { outputs, stages: [{ name: 'model', durationNs: runNs, numRows: batchSize }] };
    } catch (err) {
      if (err instanceof EscapementError) throw err;
      throw new EscapementError(ErrorCode.INFER_RUNTIME_ERROR, (err as Error).message);
    }
  }

  async close(): Promise<void> {
    for (const name of [...this.sessions.keys()]) await this.unload(name);
  }
}
