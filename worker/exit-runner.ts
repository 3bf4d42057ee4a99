/**
 * Runs one batch through a model's segment chain with ramp heads attached, answering requests
 * at the first active ramp whose confidence reaches its threshold (max softmax ≥ τ).
 *
 * Modes:
 * - `release` (Apparate): every row runs to the end; exits are reported as they happen and the
 *   final outputs of exited rows still come back (accuracy feedback), so the batch's duration
 *   does not change.
 * - `compact`: exited rows leave the batch, so later segments run on fewer rows and the batch
 *   ends earlier; rows listed in `keepRows` (a sample for accuracy monitoring) run to the end
 *   even if they exit.
 * Intermediate tensors stay in this thread between segments. Each exit is reported through
 * `onExit` as soon as its ramp has run, while the rest of the batch continues.
 */
import type * as ort from 'onnxruntime-node';
import { RowSet, sliceRows } from './row-compaction.js';

export interface ChainStep {
  session: ort.InferenceSession;
  inputs: string[];
  outputs: string[];
  /** Site at the end of this segment (its ramp may be active), or null for the last segment. */
  endsAtSite: number | null;
  /**
   * When the site's ramp head is fused into this segment's graph: the output holding its
   * probabilities (one `run()` instead of two, no activation copy between sessions).
   */
  headOutput?: string;
}

export interface RampHead {
  session: ort.InferenceSession;
  /** The site tensor the head reads. */
  input: string;
  output: string;
}

export interface ExitConfig {
  mode: 'release' | 'compact';
  /** Active ramps: threshold per site id (a site of the chain without an entry is inactive). */
  thresholds: ReadonlyMap<number, number>;
  /** Original rows that run to the end even if they exit (compact mode). */
  keepRows: ReadonlySet<number>;
  /** Rows beyond this are padding: never reported, dropped first in compact mode. */
  numRequests: number;
}

export interface ExitEvent {
  siteId: number;
  rows: number[];
  confidences: number[];
  predictions: number[];
  /** Probabilities of the exiting rows, [rows.length, numClasses] row-major. */
  probabilities: Float32Array;
  numClasses: number;
}

export interface ChainRunResult {
  /** Final output of the rows that ran to the end, [finalRows.length, ...] row-major. */
  finalOutput: ort.Tensor;
  finalRows: number[];
  /** Per active site (in chain order): confidence and prediction of every row that reached it (NaN / -1 otherwise). */
  feedback: { siteIds: number[]; confidences: number[][]; predictions: number[][] };
  /** Per segment actually run: its name and duration. */
  stageNs: { name: string; durationNs: number; numRows: number }[];
}

type Tensor = ort.Tensor;

/** The class with the highest score in row `row` of a [rows, numClasses] row-major array. */
export function bestClass(values: Float32Array, row: number, numClasses: number): number {
  let best = 0;
  for (let c = 1; c < numClasses; c++) if (values[row * numClasses + c]! > values[row * numClasses + best]!) best = c;
  return best;
}

function sliceTensor(ortModule: typeof ort, t: Tensor, numRows: number, keep: number[]): Tensor {
  const data = sliceRows(t.data as Float32Array, numRows, keep);
  return new ortModule.Tensor(t.type as 'float32', data, [keep.length, ...t.dims.slice(1)]);
}

export async function runChainWithExits(
  ortModule: typeof ort,
  steps: readonly ChainStep[],
  heads: ReadonlyMap<number, RampHead>,
  feeds: Record<string, Tensor>,
  batchSize: number,
  finalOutputName: string,
  config: ExitConfig,
  onExit: (event: ExitEvent) => void,
  nowNs: () => number,
): Promise<ChainRunResult> {
  const env: Record<string, Tensor> = { ...feeds };
  const rows = new RowSet(batchSize);
  const exited = new Set<number>();
  const activeSites = steps.map((s) => s.endsAtSite).filter((s): s is number => s !== null && config.thresholds.has(s));
  const feedback = {
    siteIds: activeSites,
    confidences: activeSites.map(() => new Array<number>(config.numRequests).fill(Number.NaN)),
    predictions: activeSites.map(() => new Array<number>(config.numRequests).fill(-1)),
  };
  const stageNs: ChainRunResult['stageNs'] = [];

  const shrink = (numBefore: number, kept: number[]): void => {
    if (kept.length === numBefore) return;
    // NOTE: every environment tensor whose first dimension is the current batch is batch-major.
    for (const name of Object.keys(env)) {
      const t = env[name]!;
      if (t.dims.length > 0 && t.dims[0] === numBefore) env[name] = sliceTensor(ortModule, t, numBefore, kept);
    }
  };
  // In compact mode padding rows carry no request: they leave before the first segment.
  if (config.mode === 'compact' && config.numRequests < batchSize)
    shrink(
      batchSize,
      rows.retain((current) => rows.originalRow(current) < config.numRequests),
    );

  // What a later step (or the caller) still reads after each step: the rest is dropped, so a
  // compact shrink copies only live tensors (not the input or earlier sites' activations).
  const liveAfter = steps.map((_, i) => new Set([finalOutputName, ...steps.slice(i + 1).flatMap((s) => s.inputs)]));
  const dropDead = (stepIndex: number): void => {
    for (const name of Object.keys(env)) if (!liveAfter[stepIndex]!.has(name)) delete env[name];
  };

  for (const [stepIndex, step] of steps.entries()) {
    // 1. the segment
    const segmentFeeds: Record<string, Tensor> = {};
    for (const name of step.inputs) segmentFeeds[name] = env[name]!;
    const t0 = nowNs();
    Object.assign(env, await step.session.run(segmentFeeds));
    stageNs.push({ name: step.endsAtSite === null ? 'final' : `segment->${step.endsAtSite}`, durationNs: nowNs() - t0, numRows: rows.size });
    const siteId = step.endsAtSite;
    if (siteId === null || !config.thresholds.has(siteId)) {
      dropDead(stepIndex);
      continue;
    }

    // 2. its ramp (fused into the segment, or a session of its own)
    let probs: Tensor;
    if (step.headOutput) {
      probs = env[step.headOutput]!;
    } else {
      const head = heads.get(siteId)!;
      const t1 = nowNs();
      probs = (await head.session.run({ [head.input]: env[head.input]! }))[head.output]!;
      stageNs.push({ name: `ramp${siteId}`, durationNs: nowNs() - t1, numRows: rows.size });
    }
    const numClasses = probs.dims[1]!;
    const values = probs.data as Float32Array;
    const threshold = config.thresholds.get(siteId)!;
    const siteIndex = activeSites.indexOf(siteId);
    const event: ExitEvent = { siteId, rows: [], confidences: [], predictions: [], probabilities: new Float32Array(0), numClasses };
    const exitingCurrent: number[] = [];
    for (let current = 0; current < rows.size; current++) {
      const row = rows.originalRow(current);
      if (row >= config.numRequests) continue;
      const best = bestClass(values, current, numClasses);
      const confidence = values[current * numClasses + best]!;
      feedback.confidences[siteIndex]![row] = confidence;
      feedback.predictions[siteIndex]![row] = best;
      if (exited.has(row) || confidence < threshold) continue;
      exited.add(row);
      exitingCurrent.push(current);
      event.rows.push(row);
      event.confidences.push(confidence);
      event.predictions.push(best);
    }
    if (event.rows.length > 0) {
      event.probabilities = sliceRows(values, rows.size, exitingCurrent);
      onExit(event);
    }

    // 3. compact: exited rows leave, unless sampled to run on for accuracy monitoring
    dropDead(stepIndex);
    if (config.mode === 'compact' && exitingCurrent.length > 0) {
      const numBefore = rows.size;
      shrink(
        numBefore,
        rows.retain((current) => {
          const row = rows.originalRow(current);
          return !exited.has(row) || config.keepRows.has(row);
        }),
      );
      if (rows.size === 0) break;
    }
  }

  const finalOutput = env[finalOutputName] ?? new ortModule.Tensor('float32', new Float32Array(0), [0]);
  return {
    finalOutput: rows.size === 0 ? new ortModule.Tensor('float32', new Float32Array(0), [0, ...(finalOutput.dims.slice(1) as number[])]) : finalOutput,
    finalRows: [...rows.originalRows()],
    feedback,
    stageNs,
  };
}
