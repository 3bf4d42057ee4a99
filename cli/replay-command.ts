/** `escapement replay`: a trace, open loop, against a running controller; writes a report folder. */
import * as ort from 'onnxruntime-node';
import { EscapementClient } from '../client/escapement-client.js';
import { randomInputs } from '../client/input-tensors.js';
import { formatTable } from '../loadgen/latency-summary.js';
import { replayTrace, type ReplayProgress } from '../loadgen/replay.js';
import { summarizeReplay, windowTable, writeReplayReport, type ReplaySummary } from '../loadgen/replay-report.js';
import { loadDataset, type Dataset } from '../prepare/dataset.js';
import { addNoise, DriftError, parseDrift, planDrift } from '../loadgen/drift.js';
import { datasetFeeds } from '../prepare/dataset-feeds.js';
import { fitSamples } from '../prepare/sample-layout.js';
import { packageTokenizer, textInputs } from '../client/text-inputs.js';
import { loadModelEntry, modelCopyName, type ModelEntry } from '../shared/model-manifest.js';
import { ErrorCode } from '../shared/error-codes.js';
import { bytesOf, type Tensor } from '../shared/tensor.js';
import { mapSourcesToModels, scaleArrivals, zipfSplit, type ArrivalDistribution } from '../traces/arrival-process.js';
import type { MappingOverrides } from '../traces/field-mapping.js';
import { readTrace, type TraceFormat } from '../traces/trace-loader.js';
import { formatTraceSummary, summarizeTrace, timeScaleForTargetLoad } from '../traces/trace-summary.js';
import type { Arrival } from '../traces/trace.js';
import { profiledCapacityRps } from '../loadgen/profiled-capacity.js';
import { measureHostSpeed, profileRateFactor, type HostSpeed } from '../loadgen/host-speed.js';
import { sloFor } from '../loadgen/slo-rule.js';

export interface ReplayArgs {
  trace: string;
  format: TraceFormat | undefined;
  /** JSON lines and CSV: which fields hold the time (and unit), the model and the SLO. */
  fields?: MappingOverrides;
  /** Instead of `timeScale`: the speed-up that puts the busiest replay second at this share of the model's profiled capacity. */
  targetLoad?: number;
  /** With `targetLoad`: this host's speed on the model against its profile (measureHostSpeed); a slower host gets a slower replay. */
  hostSpeed?: HostSpeed;
  /** Drifting inputs (loadgen/drift.ts): a name or a JSON description; needs `dataset`. */
  drift?: string;
  controller: string;
  model: string;
  modelDir: string;
  sloMs: number | undefined;
  sloFactor: number | undefined;
  rateScale: number;
  timeScale: number;
  startOffsetS: number;
  maxSeconds: number | undefined;
  maxRequests: number | undefined;
  distribution: ArrivalDistribution;
  cv: number;
  seed: number;
  dataset: string | undefined;
  out: string;
  json: boolean;
  /** Spread the trace over this many copies of `model` (`model`, `model@1`, …); default 1. */
  copies?: number;
  /** How arrivals pick a copy: by function volume (Clockwork) or a Zipf split; default by function when the trace has functions. */
  mapping?: ModelMapping;
  /** Zipf exponent s of the split (copy k drawn with probability ∝ 1 / (k+1)^s); default 1. */
  zipfExponent?: number;
  /** Replay the slice's first seconds once, unmeasured, before the measured run (0: none; default 0). */
  warmupS?: number;
}

export type ModelMapping = 'functions' | 'zipf';

type TraceArgs = Pick<
  ReplayArgs,
  | 'trace'
  | 'format'
  | 'fields'
  | 'targetLoad'
  | 'hostSpeed'
  | 'distribution'
  | 'cv'
  | 'seed'
  | 'timeScale'
  | 'rateScale'
  | 'startOffsetS'
  | 'maxSeconds'
  | 'maxRequests'
  | 'copies'
  | 'mapping'
  | 'zipfExponent'
> & { model?: string; modelDir?: string };

/** With `targetLoad`, this host's speed on the model (an in-process timing, ~1 s), for traceFor. */
export async function hostSpeedFor(args: Pick<TraceArgs, 'targetLoad' | 'model' | 'modelDir'>): Promise<{ hostSpeed?: HostSpeed }> {
  if (args.targetLoad === undefined || args.model === undefined || args.modelDir === undefined) return {};
  try {
    const hostSpeed = await measureHostSpeed(args.modelDir, args.model);
    return hostSpeed ? { hostSpeed } : {};
  } catch {
    return {}; // no package here to time (the controller may know models this machine does not)
  }
}

/**
 * The scaled arrivals of a trace, as `replay` and `compare` use them, with what a user should see
 * before the replay: how the file was read, its summary, and the time scale used. With `copies` > 1
 * the arrivals are first spread over the copies of `model`, so a function keeps its copy whatever
 * slice is cut.
 */
export function traceFor(args: TraceArgs): { arrivals: Arrival[]; timeScale: number; notes: string[] } {
  const loaded = readTrace(args.trace, {
    seed: args.seed,
    distribution: args.distribution,
    cv: args.cv,
    ...(args.format ? { format: args.format } : {}),
    ...(args.fields ? { fields: args.fields } : {}),
  });
  let raw = loaded.arrivals;
  const notes = [`trace ${args.trace} (${loaded.format}${loaded.readAs ? `; ${loaded.readAs}` : ''}): ${formatTraceSummary(summarizeTrace(raw))}`];
  if (loaded.numOutOfOrder > 0) notes.push(`${loaded.numOutOfOrder} rows came earlier than the row before them; arrivals are replayed in time order`);
  const copies = args.copies ?? 1;
  if (!Number.isInteger(copies) || copies < 1) throw new Error(`--copies must be a positive integer, got ${copies}`);
  if (copies > 1) {
    if (args.model === undefined) throw new Error('--copies needs --model');
    const models = Array.from({ length: copies }, (_, k) => modelCopyName(args.model!, k));
    const mapping = args.mapping ?? (raw.some((a) => a.source !== undefined) ? 'functions' : 'zipf');
    if (mapping === 'functions' && !raw.some((a) => a.source !== undefined))
      throw new Error(`${args.trace} has no functions to map onto copies; use --mapping zipf`);
    raw = mapping === 'functions' ? mapSourcesToModels(raw, models) : zipfSplit(raw, models, args.zipfExponent ?? 1, args.seed);
  }
  let timeScale = args.timeScale;
  if (args.targetLoad !== undefined) {
    if (args.model === undefined || args.modelDir === undefined) throw new Error('--target-load needs --model and its package');
    const slower = profileRateFactor(args.hostSpeed);
    const capacityRps = profiledCapacityRps(args.modelDir, args.model) * slower;
    // the busiest second of the part that will be replayed, at the rate scale asked for
    const part = raw.filter((a) => a.timeMs >= args.startOffsetS * 1000);
    timeScale = timeScaleForTargetLoad(part, capacityRps / args.rateScale, args.targetLoad);
    notes.push(
      `time scale ${timeScale.toFixed(3)}: the busiest replay second offers ${(100 * args.targetLoad).toFixed(0)} ` +
        `% of ${args.model}'s profiled capacity (${capacityRps.toFixed(0)} req/s on 2 workers` +
        (slower < 1
          ? `, scaled by ${slower.toFixed(2)}: this host runs its largest batch in ${args.hostSpeed!.measuredMs.toFixed(1)} ms, the profile in ${args.hostSpeed!.profiledMs.toFixed(1)})`
          : ')'),
    );
  }
  const arrivals = scaleArrivals(raw, {
    seed: args.seed,
    timeScale,
    rateScale: args.rateScale,
    startOffsetMs: args.startOffsetS * 1000,
    ...(args.maxSeconds !== undefined ? { maxSeconds: args.maxSeconds } : {}),
    ...(args.maxRequests !== undefined ? { maxRequests: args.maxRequests } : {}),
  });
  return { arrivals, timeScale, notes };
}

/** The scaled arrivals of a trace (see `traceFor`). */
export function arrivalsFor(args: TraceArgs): Arrival[] {
  return traceFor(args).arrivals;
}

/**
 * Inputs from the dataset in order, starting after the package's bootstrap part when the dataset
 * is the one the ramps were trained on (the paper serves the remaining 90 %). Text models get
 * their texts tokenized here, on the client, with the package's tokenizer.
 */
export async function datasetFeeder(entry: ModelEntry | undefined, datasetPath: string, numRequests: number, drift?: string) {
  const tokenizer = entry ? packageTokenizer(entry) : undefined;
  // A folder of images is laid out as the package's input wants it.
  const imageShape = entry?.manifest.inputs[0]?.shape.slice(1);
  const dataset: Dataset = loadDataset(datasetPath, tokenizer ? { tokenizer } : imageShape && imageShape.every((d) => d > 0) ? { imageShape } : {});
  const ee = entry?.manifest.earlyExit;
  const start = ee && ee.dataset.name === dataset.name ? ee.dataset.serveStart : 0;
  const spec = entry?.manifest.inputs[0];
  // Samples as prepare fitted them: unit axes, or images in the input's channel order.
  if (spec && !dataset.text && imageShape && imageShape.every((d) => d > 0)) {
    const datasetShape = [...dataset.sampleShape];
    if (!fitSamples(dataset, imageShape))
      throw new Error(
        `${datasetPath}: samples of shape [${datasetShape.join(',')}] do not fit the input '${spec.name}' of '${entry!.manifest.name}' ([${imageShape.join(',')}] per sample)`,
      );
  }
  const sampleShape = spec && !dataset.text ? spec.shape.slice(1) : dataset.sampleShape;
  const size = sampleShape.reduce((a, b) => a * b, 1);
  const count = dataset.numSamples - start;
  const indexOf = (i: number) => start + (i % count);
  // With a drift, the run's own requests are made up front (the warm-up's, after them, stay clean).
  const drifted = drift !== undefined ? driftedInputs(dataset, drift, ee?.numClasses, start, count, size, numRequests) : undefined;
  const sampleOf = (i: number) => (drifted && i < numRequests ? drifted.sampleOf(i) : indexOf(i));
  const rowOf = (i: number): Float32Array | BigInt64Array =>
    drifted && i < numRequests ? drifted.inputs.subarray(i * size, (i + 1) * size) : dataset.inputs.subarray(indexOf(i) * size, (indexOf(i) + 1) * size);
  const inputsFor = (i: number): Tensor[] => {
    if (tokenizer && dataset.text) return textInputs(tokenizer, dataset.text.texts[indexOf(i)]!);
    return [{ name: spec?.name ?? 'input', dtype: 'float32', shape: [1, ...sampleShape], data: bytesOf(rowOf(i).slice()) }];
  };
  const labelFor = (i: number) => dataset.labels?.[sampleOf(i)];
  // The full model's own predictions, to measure agreement of early answers.
  let reference: Int32Array | undefined;
  if (entry) {
    const n = drifted ? numRequests : Math.min(numRequests, count);
    const session = await ort.InferenceSession.create(entry.onnxPath, { logSeverityLevel: 3 });
    reference = new Int32Array(n);
    for (let b = 0; b < n; b += 256) {
      const m = Math.min(256, n - b);
      const feeds = drifted
        ? { [spec!.name]: new ort.Tensor('float32', drifted.inputs.slice(b * size, (b + m) * size), [m, ...sampleShape]) }
        : datasetFeeds({ ...dataset, sampleShape }, dataset.text?.idsInput ?? spec!.name, start + b, m);
      const out = (await session.run(feeds))[entry.manifest.outputs[0]!.name]!;
      const k = out.dims[1]!;
      const v = out.data as Float32Array;
      for (let r = 0; r < m; r++) {
        let best = 0;
        for (let c = 1; c < k; c++) if (v[r * k + c]! > v[r * k + best]!) best = c;
        reference[b + r] = best;
      }
    }
    await session.release();
  }
  const referenceIndex = (i: number) => (drifted ? i : i % count);
  return {
    inputsFor,
    labelFor,
    referenceFor: (i: number) => (reference && referenceIndex(i) < reference.length ? reference[referenceIndex(i)] : undefined),
    start,
    numInputs: count,
  };
}

/** The run's inputs under a drift (loadgen/drift.ts), from the serving part of an image dataset. */
function driftedInputs(dataset: Dataset, drift: string, numClasses: number | undefined, start: number, count: number, size: number, numRequests: number) {
  if (dataset.text || !(dataset.inputs instanceof Float32Array)) throw new DriftError('--drift applies to image datasets (float inputs) for now');
  const values = dataset.inputs;
  const labels = dataset.labels?.subarray(start);
  const plan = planDrift(parseDrift(drift, numClasses ?? (labels ? Math.max(...labels) + 1 : 0)), numRequests, count, labels);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const inputs = new Float32Array(numRequests * size);
  for (let i = 0; i < numRequests; i++) {
    const k = start + plan.sampleOf(i);
    const row = inputs.subarray(i * size, (i + 1) * size);
    row.set(values.subarray(k * size, (k + 1) * size));
    addNoise(row, plan.sigmaOf(i), i, lo, hi);
  }
  return { inputs, sampleOf: (i: number) => start + plan.sampleOf(i) };
}

/**
 * Inputs for an unmeasured warm-up of `numWarmup` requests before a measured run of `numMeasured`:
 * the ones after the measured run's, so the online tuner has not already seen the inputs it is
 * measured on. Disjoint while the dataset serves both (`numInputs`); `note` says when it cannot.
 */
export function warmupInputs(
  inputsFor: (i: number) => Tensor[],
  numMeasured: number,
  numWarmup: number,
  numInputs?: number,
): { inputsFor: (i: number) => Tensor[]; note?: string } {
  const needed = numMeasured + numWarmup;
  const note =
    numInputs !== undefined && needed > numInputs
      ? `warm-up inputs overlap the measured ones: the dataset serves ${numInputs} inputs, warm-up and run need ${needed}`
      : undefined;
  return { inputsFor: (i) => inputsFor(numMeasured + i), ...(note ? { note } : {}) };
}

/** Live counts: redrawn in place on a terminal, a line every 5 s otherwise (logs, CI). */
export function progressPrinter(): (p: ReplayProgress) => void {
  let lastLineMs = 0;
  return (p) => {
    const width = 20;
    const filled = p.numScheduled > 0 ? Math.round((width * p.numAnswered) / p.numScheduled) : width;
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const text = `${bar} sent ${p.numSent}/${p.numScheduled}  answered ${p.numAnswered}  early ${p.numEarly}  rejected ${p.numRejected}  missed ${p.numMissed}  errors ${p.numErrors}`;
    const done = p.numAnswered === p.numScheduled;
    if (process.stderr.isTTY) process.stderr.write(`\r  ${text}   ${done ? '\n' : ''}`);
    else if (done || Date.now() - lastLineMs > 5000) {
      lastLineMs = Date.now();
      process.stderr.write(`  ${text}\n`);
    }
  };
}

export function summaryRow(name: string, s: ReplaySummary): Record<string, string | number> {
  return {
    run: name,
    requests: s.numRequests,
    p50Ms: s.p50Ms,
    p90Ms: s.p90Ms,
    p95Ms: s.p95Ms,
    p99Ms: s.p99Ms,
    'p99.9Ms': s.p999Ms,
    'slo %': 100 * s.sloAttainment,
    'goodput/s': s.goodputRps,
    rejected: s.numRejected,
    missed: s.numMissed,
    errors: s.numErrors,
    'exit %': 100 * s.exitFraction,
    'agree %': s.agreement === undefined ? '-' : (100 * s.agreement).toFixed(2),
    'acc %': s.accuracy === undefined ? '-' : (100 * s.accuracy).toFixed(2),
  };
}

export async function runReplay(args: ReplayArgs): Promise<number> {
  let entry: ModelEntry | undefined;
  try {
    entry = loadModelEntry(args.modelDir, args.model);
  } catch {
    entry = undefined; // the controller may know models this machine does not
  }
  const trace = traceFor({ ...args, ...(await hostSpeedFor(args)) });
  for (const note of trace.notes) process.stderr.write(`${note}\n`);
  const arrivals = trace.arrivals;
  const sloMs = sloFor(entry, args.sloMs, args.sloFactor);
  if (args.drift !== undefined && !args.dataset) throw new Error('--drift needs --dataset: drifting inputs are made from a dataset');
  const feeder = args.dataset ? await datasetFeeder(entry, args.dataset, arrivals.length, args.drift) : undefined;
  const client = await EscapementClient.connect(args.controller);
  try {
    const inputsFor = feeder?.inputsFor ?? ((i: number) => randomInputs(entry!.manifest, args.seed + i));
    const warmup = arrivals.filter((a) => a.timeMs < (args.warmupS ?? 0) * 1000);
    if (warmup.length > 0) {
      // A fresh client process is slow for its first second or two (JIT), and so is a fresh cluster.
      const feed = warmupInputs(inputsFor, arrivals.length, warmup.length, feeder?.numInputs);
      process.stderr.write(`warm-up: ${warmup.length} requests, not measured${feed.note ? ` (${feed.note})` : ''}\n`);
      await replayTrace(client, { arrivals: warmup, model: args.model, sloMs, inputsFor: feed.inputsFor });
    }
    process.stderr.write(`replaying ${arrivals.length} requests over ${(arrivals.at(-1)?.timeMs ?? 0) / 1000} s, SLO ${sloMs.toFixed(2)} ms\n`);
    const result = await replayTrace(client, {
      arrivals,
      model: args.model,
      sloMs,
      inputsFor,
      ...(feeder ? { labelFor: feeder.labelFor, referenceFor: feeder.referenceFor } : {}),
      onProgress: progressPrinter(),
    });
    const summary = writeReplayReport(args.out, result, args.model);
    const unknown = [...new Set(result.records.filter((r) => r.code === ErrorCode.UNKNOWN_MODEL).map((r) => r.model))];
    if (unknown.length > 0) {
      const hint = (args.copies ?? 1) > 1 ? ` (start it with --model-copies ${args.copies})` : '';
      process.stderr.write(`the controller does not serve ${unknown.join(', ')}${hint}; those requests were rejected\n`);
    }
    const models = [...new Set(result.records.map((r) => r.model))].sort();
    // With several models, a row each after the total (the CSV has every request's model).
    const rows = [summaryRow(models.length > 1 ? 'all models' : args.model, summary)];
    if (models.length > 1)
      for (const m of models) rows.push(summaryRow(m, summarizeReplay({ ...result, records: result.records.filter((r) => r.model === m) })));
    if (args.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`${formatTable(rows)}\nschedule lag p99 ${summary.scheduleLagP99Ms.toFixed(3)} ms; report in ${args.out}\n`);
    if (!args.json && args.drift !== undefined) process.stdout.write(`\nby window (drift ${args.drift}):\n${windowTable([{ label: 'run', summary }])}\n`);
    return summary.numErrors > 0 ? 1 : 0;
  } finally {
    await client.close();
  }
}
