/**
 * The initial choice of ramps: greedy by latency benefit per ms of ramp cost, on the validation
 * split, capped by a maximum number of ramps and by an overhead budget (total ramp cost as a
 * fraction of the model's latency).
 *
 * A set of ramps is scored as a cascade: each sample exits at the first active ramp (in depth
 * order) whose confidence reaches that ramp's own threshold; its latency is the backbone time up
 * to that site plus the cost of every active ramp up to and including it; a sample that never
 * exits pays the whole model plus every active ramp. The benefit of a set is the mean latency
 * saved against the model alone. Latencies come from the profile at one reference batch size.
 *
 * Thresholds: in a set of k ramps each ramp gets 1/k of the accuracy budget. A sample that exits
 * at ramp r in the cascade would also exit at r alone, so the cascade's disagreements are at most
 * the sum of the ramps' own: overall agreement stays ≥ 1 − budget on the validation split.
 * That point estimate sits at the budget's edge, so the chosen set's thresholds are then set as
 * the controller's tuner would set them online (`boundedSelection`): an upper confidence bound
 * on the disagreement rate within the budget, and served agreement starts inside it.
 */
import { tuneThresholds } from '../shared/threshold-tuner.js';
import { thresholdForBudget, type RampOutputs } from './ramp-statistics.js';

export interface RampCandidate {
  siteId: number;
  /** Backbone ms from the input to this site. */
  upToMs: number;
  /** Ramp head ms. */
  costMs: number;
  outputs: RampOutputs;
}

interface ScoredRamp extends RampCandidate {
  threshold: number;
}

export interface SelectionOptions {
  maxRamps: number;
  /** Σ ramp cost ≤ overheadBudget × wholeMs. */
  overheadBudget: number;
  /** Agreement with the full model must stay ≥ 1 − accuracyBudget. */
  accuracyBudget: number;
}

export interface SelectionResult {
  chosen: number[];
  /** Threshold of each chosen ramp, same order. */
  thresholds: number[];
  /** Mean ms saved per sample by the chosen cascade (negative: slower). */
  savingMs: number;
  /** Fraction of samples exiting at each chosen ramp, in the same order. */
  exitFractions: number[];
  /** Agreement of the chosen cascade with the full model on the validation split. */
  agreement: number;
  overheadMs: number;
  steps: { siteId: number; savingMs: number; overheadMs: number }[];
}

/** Gives each ramp of a set its share of the accuracy budget. */
export function withThresholds(set: readonly RampCandidate[], finalPredictions: Int32Array, accuracyBudget: number): ScoredRamp[] {
  return set.map((c) => ({ ...c, threshold: thresholdForBudget(c.outputs, finalPredictions, accuracyBudget / set.length).threshold }));
}

/** Scores a cascade of ramps (any order given; evaluated in depth order). */
export function scoreCascade(candidates: readonly ScoredRamp[], finalPredictions: Int32Array, wholeMs: number) {
  const ramps = [...candidates].sort((a, b) => a.upToMs - b.upToMs);
  const n = finalPredictions.length;
  const exits = new Array<number>(ramps.length).fill(0);
  let totalMs = 0;
  let agree = 0;
  for (let i = 0; i < n; i++) {
    let paidMs = 0;
    let exited = false;
    for (let r = 0; r < ramps.length; r++) {
      const ramp = ramps[r]!;
      paidMs += ramp.costMs;
      if (ramp.outputs.confidence[i]! >= ramp.threshold) {
        totalMs += ramp.upToMs + paidMs;
        exits[r]!++;
        if (ramp.outputs.prediction[i] === finalPredictions[i]) agree++;
        exited = true;
        break;
      }
    }
    if (!exited) {
      totalMs += wholeMs + paidMs;
      agree++;
    }
  }
  return {
    savingMs: wholeMs - totalMs / n,
    exitFractions: exits.map((e) => e / n),
    agreement: agree / n,
    siteIds: ramps.map((r) => r.siteId),
    thresholds: ramps.map((r) => r.threshold),
  };
}

/**
 * The chosen ramps with thresholds from the online tuner's rule (Wilson upper bound on the
 * validation split's disagreement ≤ budget, at one standard error), rescored as a cascade. A ramp the bound switches off
 * stays in the set (the tuner may switch it on once served data allows) with a threshold > 1.
 */
export function boundedSelection(
  selection: SelectionResult,
  candidates: readonly RampCandidate[],
  finalPredictions: Int32Array,
  wholeMs: number,
  accuracyBudget: number,
): SelectionResult {
  if (selection.chosen.length === 0) return selection;
  const chosen = selection.chosen.map((id) => candidates.find((c) => c.siteId === id)!).sort((a, b) => a.upToMs - b.upToMs);
  const samples = Array.from(finalPredictions, (finalPrediction, i) => ({
    confidences: chosen.map((c) => c.outputs.confidence[i]!),
    predictions: chosen.map((c) => c.outputs.prediction[i]!),
    finalPrediction,
  }));
  // z = 1 (one standard error), not the controller's 1.645: a bootstrap of a few hundred samples
  // cannot support the 95 % bound (0 disagreements in 266 would not do), and the controller
  // re-tunes on served data with its own bound within the first few hundred requests.
  const tuned = tuneThresholds(
    samples,
    chosen.map((c) => ({ siteId: c.siteId, upToMs: c.upToMs, costMs: c.costMs })),
    wholeMs,
    { budget: accuracyBudget, z: 1 },
  );
  const score = scoreCascade(
    chosen.map((c, r) => ({ ...c, threshold: tuned.thresholds[r]! })),
    finalPredictions,
    wholeMs,
  );
  return {
    ...selection,
    chosen: score.siteIds,
    thresholds: score.thresholds,
    savingMs: score.savingMs,
    exitFractions: score.exitFractions,
    agreement: score.agreement,
  };
}

export function selectRamps(candidates: readonly RampCandidate[], finalPredictions: Int32Array, wholeMs: number, options: SelectionOptions): SelectionResult {
  const chosen: RampCandidate[] = [];
  const steps: SelectionResult['steps'] = [];
  let current = scoreCascade([], finalPredictions, wholeMs);
  const overheadOf = (set: readonly RampCandidate[]) => set.reduce((s, c) => s + c.costMs, 0);
  while (chosen.length < options.maxRamps) {
    let best: { candidate: RampCandidate; score: ReturnType<typeof scoreCascade>; perMs: number } | undefined;
    for (const candidate of candidates) {
      if (chosen.includes(candidate)) continue;
      if (overheadOf([...chosen, candidate]) > options.overheadBudget * wholeMs) continue;
      const score = scoreCascade(withThresholds([...chosen, candidate], finalPredictions, options.accuracyBudget), finalPredictions, wholeMs);
      const gainMs = score.savingMs - current.savingMs;
      if (gainMs <= 0) continue;
      const perMs = gainMs / Math.max(candidate.costMs, 1e-6);
      if (!best || perMs > best.perMs) best = { candidate, score, perMs };
    }
    if (!best) break;
    chosen.push(best.candidate);
    current = best.score;
    steps.push({ siteId: best.candidate.siteId, savingMs: current.savingMs, overheadMs: overheadOf(chosen) });
  }
  return {
    chosen: current.siteIds,
    thresholds: current.thresholds,
    savingMs: current.savingMs,
    exitFractions: current.exitFractions,
    agreement: current.agreement,
    overheadMs: overheadOf(chosen),
    steps,
  };
}
