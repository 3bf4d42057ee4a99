/**
 * Accuracy-aware threshold tuning for a cascade of ramps (pure; the controller feeds it a window
 * of recent requests).
 *
 * Each window sample holds, for every active ramp in depth order, the ramp's confidence (max
 * softmax) and prediction, and the full model's prediction. With thresholds τ, a sample exits at
 * the first ramp whose confidence ≥ τ; it disagrees if that ramp's prediction differs from the full
 * model's. The tuner maximises the expected latency saving subject to an upper confidence bound
 * (Wilson, one-sided) on the disagreement rate staying within the budget (default 1 %).
 *
 * Search: thresholds only matter at observed confidence values, so each ramp's candidates are its
 * distinct confidences (thinned to at most `maxCandidates`, evenly by rank, always keeping the
 * highest: a saturated softmax puts many rows at exactly 1, and thinning that dropped the top
 * value could only admit them together with the next, less certain ones), highest first.
 * Starting with every ramp off, the tuner repeatedly lowers
 * one ramp's threshold to its next candidate that changes which samples exit where, picking the
 * feasible move that buys the most saving per added disagreement, until no move is feasible; each
 * threshold is then raised to the lowest confidence that exits at its ramp in the window. Lowering a threshold only moves exits earlier,
 * so every move saves time and the bound decides where to stop.
 *
 * Better than the reference (zero disagreements in a 4-batch window): hundreds of samples, a
 * statistical bound instead of a streak, and an exact search over the values that matter.
 * Failure mode: a window too small for the bound (few hundred samples) keeps thresholds high;
 * that costs savings, never accuracy.
 */
export interface TunerSample {
  /** Per active ramp, in depth order. */
  confidences: number[];
  predictions: number[];
  finalPrediction: number;
  /** How many requests this sample stands for (1 / sampling rate). Default 1. */
  weight?: number;
}

export interface TunerRamp {
  siteId: number;
  /** Backbone time from the input to the ramp's site (ms). */
  upToMs: number;
  /** The head's cost (ms). */
  costMs: number;
}

export interface TunerResult {
  /** Per ramp, same order; > 1 means the ramp never answers. */
  thresholds: number[];
  expectedSavingMs: number;
  /** Weighted fraction of samples exiting at each ramp. */
  exitFractions: number[];
  /** Observed weighted disagreement rate and its upper bound. */
  disagreementRate: number;
  disagreementUpperBound: number;
  numSamples: number;
}

export interface TunerOptions {
  /** Allowed disagreement with the full model. Default 0.01. */
  budget: number;
  /** z of the one-sided bound. Default 1.645 (95 %). */
  z: number;
  /**
   * Candidate thresholds per ramp: every k-th distinct observed confidence, at most this many.
   * Default 64: a 512-sample window re-tunes in about 3 ms instead of 8 (it runs every 128
   * requests on the controller's event loop).
   */
  maxCandidates: number;
}

/** `tuneThresholds`' shape: the exit monitor may be given another runner of the same search (controller/tuner-thread.ts). */
export type ThresholdSearch = (samples: readonly TunerSample[], ramps: readonly TunerRamp[], wholeMs: number, overrides?: Partial<TunerOptions>) => TunerResult;

export const DEFAULT_TUNER_OPTIONS: TunerOptions = { budget: 0.01, z: 1.645, maxCandidates: 64 };

export const DISABLED_THRESHOLD = 1.0001;

/** Wilson score upper bound of a rate observed as `failures` in `n` trials. */
export function wilsonUpperBound(failures: number, n: number, z: number): number {
  return n <= 0 ? 1 : wilsonUpperBoundOfRate(failures / n, n, z);
}

/** Wilson score upper bound of an observed rate `p` over `n` (possibly effective, non-integer) trials. */
export function wilsonUpperBoundOfRate(p: number, n: number, z: number): number {
  if (n <= 0) return 1;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const margin = z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return Math.min(1, (centre + margin) / (1 + z2 / n));
}

/** Wilson score lower bound of an observed rate `p` over `n` (possibly effective, non-integer) trials. */
export function wilsonLowerBoundOfRate(p: number, n: number, z: number): number {
  if (n <= 0) return 0;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const margin = z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return Math.max(0, (centre - margin) / (1 + z2 / n));
}

interface Evaluation {
  savingMs: number;
  disagreeWeight: number;
  exitWeights: number[];
  /** Σ w and Σ w² over the samples that exit (for the effective sample size). */
  exitedWeight: number;
  exitedWeightSq: number;
}

/**
 * Upper bound on the overall disagreement rate: disagreements happen only among exits, so bound
 * the rate among exits and scale by the (known) exit share. Samples carry weights (compact mode
 * keeps a 10 % sample of its exits, each standing for 10), so the bound uses Kish's effective
 * sample size (Σw)²/Σw² of the exits, not Σw: ten copies of one observation are one observation.
 */
function disagreementBound(e: Evaluation, totalWeight: number, z: number): number {
  if (e.exitedWeight <= 0) return 0;
  const effectiveExits = (e.exitedWeight * e.exitedWeight) / e.exitedWeightSq;
  return wilsonUpperBoundOfRate(e.disagreeWeight / e.exitedWeight, effectiveExits, z) * (e.exitedWeight / Math.max(totalWeight, 1e-9));
}

/**
 * The window laid out for the search: one row per sample, one column per ramp, in typed arrays.
 * NOTE: the search evaluates the window hundreds of times per re-tune on the controller's event
 * loop; over the sample objects it deoptimised on their varying shapes and, unoptimised, boxed
 * every number and allocated an iterator result per sample: about a tenth of a compact controller's
 * allocation (at ~990 requests/s) came from re-tuning.
 */
interface Columns {
  numSamples: number;
  numRamps: number;
  /** [sample * numRamps + ramp]; NaN where the ramp never saw the sample. */
  confidences: Float64Array;
  /** 1 where the ramp's prediction differs from the full model's. */
  disagrees: Uint8Array;
  weights: Float64Array;
}

function columnsOf(samples: readonly TunerSample[], numRamps: number): Columns {
  const n = samples.length;
  const columns = {
    numSamples: n,
    numRamps,
    confidences: new Float64Array(n * numRamps),
    disagrees: new Uint8Array(n * numRamps),
    weights: new Float64Array(n),
  };
  for (let i = 0; i < n; i++) {
    const s = samples[i]!;
    columns.weights[i] = s.weight ?? 1;
    for (let r = 0; r < numRamps; r++) {
      columns.confidences[i * numRamps + r] = s.confidences[r]!;
      columns.disagrees[i * numRamps + r] = s.predictions[r] !== s.finalPrediction ? 1 : 0;
    }
  }
  return columns;
}

/** What answering at each ramp costs (`answerMs[r]`: the backbone to it and the heads up to it) and not answering early. */
interface Costs {
  answerMs: Float64Array;
  wholeMs: number;
  /** The whole model and every head on the way. */
  fullMs: number;
}

function costsOf(ramps: readonly TunerRamp[], wholeMs: number): Costs {
  const answerMs = new Float64Array(ramps.length);
  let paidMs = 0;
  ramps.forEach((ramp, r) => {
    paidMs += ramp.costMs;
    answerMs[r] = ramp.upToMs + paidMs;
  });
  return { answerMs, wholeMs, fullMs: wholeMs + paidMs };
}

/** The first ramp sample `i` exits at under `thresholds`, or -1. */
function exitRampOf(columns: Columns, i: number, thresholds: readonly number[]): number {
  const base = i * columns.numRamps;
  for (let r = 0; r < columns.numRamps; r++) if (columns.confidences[base + r]! >= thresholds[r]!) return r;
  return -1;
}

function evaluate(columns: Columns, costs: Costs, thresholds: readonly number[]): Evaluation {
  const exitWeights = new Array<number>(columns.numRamps).fill(0);
  let totalMs = 0;
  let totalWeight = 0;
  let disagreeWeight = 0;
  let exitedWeight = 0;
  let exitedWeightSq = 0;
  for (let i = 0; i < columns.numSamples; i++) {
    const w = columns.weights[i]!;
    totalWeight += w;
    const r = exitRampOf(columns, i, thresholds);
    if (r < 0) {
      totalMs += w * costs.fullMs;
      continue;
    }
    totalMs += w * costs.answerMs[r]!;
    exitWeights[r]! += w;
    exitedWeight += w;
    exitedWeightSq += w * w;
    if (columns.disagrees[i * columns.numRamps + r] === 1) disagreeWeight += w;
  }
  const n = Math.max(totalWeight, 1e-9);
  return { savingMs: costs.wholeMs - totalMs / n, disagreeWeight, exitWeights: exitWeights.map((x) => x / n), exitedWeight, exitedWeightSq };
}

/**
 * Each threshold raised to the lowest confidence of the samples that exit at its ramp (disabled if
 * none do): the window's exits are the same, and a served input between the two values exits only
 * where the window showed inputs like it do. Without this, a search that passed over candidates
 * whose samples exit earlier (or ended on such a move) left a ramp's threshold below any evidence.
 */
function tightened(columns: Columns, thresholds: readonly number[]): number[] {
  const lowest = thresholds.map(() => Number.POSITIVE_INFINITY);
  for (let i = 0; i < columns.numSamples; i++) {
    const r = exitRampOf(columns, i, thresholds);
    if (r >= 0) lowest[r] = Math.min(lowest[r]!, columns.confidences[i * columns.numRamps + r]!);
  }
  return thresholds.map((t, r) => (Number.isFinite(lowest[r]!) ? Math.max(t, lowest[r]!) : DISABLED_THRESHOLD));
}

/** A ramp's distinct finite confidences, highest first, thinned to at most `max` (evenly by rank, keeping the highest and lowest). */
function candidatesOf(columns: Columns, r: number, max: number): number[] {
  const values = new Float64Array(columns.numSamples);
  let count = 0;
  for (let i = 0; i < columns.numSamples; i++) {
    const c = columns.confidences[i * columns.numRamps + r]!;
    if (Number.isFinite(c)) values[count++] = c;
  }
  const sorted = values.subarray(0, count).sort();
  const distinct: number[] = [];
  for (let i = count - 1; i >= 0; i--) if (distinct.length === 0 || sorted[i]! !== distinct.at(-1)) distinct.push(sorted[i]!);
  const stride = Math.ceil(distinct.length / max);
  return distinct.filter((_, i) => i % stride === 0 || i === distinct.length - 1);
}

export function tuneThresholds(
  samples: readonly TunerSample[],
  ramps: readonly TunerRamp[],
  wholeMs: number,
  overrides: Partial<TunerOptions> = {},
): TunerResult {
  const options = { ...DEFAULT_TUNER_OPTIONS, ...overrides };
  const columns = columnsOf(samples, ramps.length);
  const costs = costsOf(ramps, wholeMs);
  const totalWeight = columns.weights.reduce((sum, w) => sum + w, 0);
  const candidates = ramps.map((_, r) => candidatesOf(columns, r, options.maxCandidates));
  const position = ramps.map(() => -1); // -1: off
  const thresholdsAt = (pos: readonly number[]) => pos.map((p, r) => (p < 0 ? DISABLED_THRESHOLD : candidates[r]![p]!));
  let current = evaluate(columns, costs, thresholdsAt(position));
  const feasible = (e: Evaluation) => disagreementBound(e, totalWeight, options.z) <= options.budget;
  // A ramp's next candidates may change nothing: every sample at or above them already exits at an
  // earlier ramp, and will, since thresholds only fall. Such a move gains nothing, so it scored below
  // any move that added a disagreement, and the search spent the budget on an early ramp's
  // disagreement instead of reaching the later ramp's safe exits behind the idle candidates
  // (fmnist-resnet, class-mix at 433 samples: 0.59 ms saved where 1.07 ms were feasible with no
  // disagreement at all). So a ramp's move is to its next candidate that changes something, and
  // the idle ones are passed over for good.
  const nextMove = (r: number): Evaluation | undefined => {
    while (position[r]! + 1 < candidates[r]!.length) {
      const trial = [...position];
      trial[r]!++;
      const evaluation = evaluate(columns, costs, thresholdsAt(trial));
      if (evaluation.savingMs !== current.savingMs || evaluation.disagreeWeight !== current.disagreeWeight) return evaluation;
      position[r] = trial[r]!;
    }
    return undefined;
  };

  for (let step = 0; step < 100_000; step++) {
    let best: { ramp: number; evaluation: Evaluation; score: number } | undefined;
    for (let r = 0; r < ramps.length; r++) {
      const evaluation = nextMove(r);
      if (!evaluation || !feasible(evaluation)) continue;
      const gainMs = evaluation.savingMs - current.savingMs;
      const addedDisagreement = evaluation.disagreeWeight - current.disagreeWeight;
      const score = gainMs / (addedDisagreement + 1e-3);
      if (!best || score > best.score) best = { ramp: r, evaluation, score };
    }
    if (!best) break;
    position[best.ramp]!++;
    current = best.evaluation;
  }
  return {
    thresholds: tightened(columns, thresholdsAt(position)),
    expectedSavingMs: current.savingMs,
    exitFractions: current.exitWeights,
    disagreementRate: current.disagreeWeight / Math.max(totalWeight, 1e-9),
    disagreementUpperBound: disagreementBound(current, totalWeight, options.z),
    numSamples: samples.length,
  };
}
