/**
 * What a ramp does on held-out data: how confident it is, how often it agrees with the full
 * model (Apparate's accuracy notion) and with the ground truth, and the threshold at which it
 * can answer while overall agreement stays within the budget.
 *
 * Exit rule throughout: a sample exits at a ramp when the ramp's max softmax probability is at
 * least the threshold τ (τ > 1 disables the ramp).
 */
import type { HeadWeights } from './ramp-heads.js';

export interface RampOutputs {
  /** Max softmax probability per sample. */
  confidence: Float32Array;
  prediction: Int32Array;
}

/** Evaluates a trained head on pooled features, exactly as its ONNX graph would. */
export function evaluateHead(head: HeadWeights, features: Float32Array, dim: number): RampOutputs {
  const n = features.length / dim;
  const confidence = new Float32Array(n);
  const prediction = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let x: Float64Array = Float64Array.from(features.subarray(i * dim, (i + 1) * dim));
    head.layers.forEach((layer, li) => {
      const y = new Float64Array(layer.outDim);
      for (let o = 0; o < layer.outDim; o++) {
        let s = layer.bias[o]!;
        for (let j = 0; j < layer.inDim; j++) s += layer.weights[o * layer.inDim + j]! * x[j]!;
        y[o] = li < head.layers.length - 1 ? Math.tanh(s) : s;
      }
      x = y;
    });
    let max = -Infinity;
    let best = 0;
    for (let c = 0; c < x.length; c++) if (x[c]! > max) [max, best] = [x[c]!, c];
    let sum = 0;
    for (let c = 0; c < x.length; c++) sum += Math.exp(x[c]! - max);
    confidence[i] = 1 / sum;
    prediction[i] = best;
  }
  return { confidence, prediction };
}

export interface ConfidenceHistogram {
  binWidth: number;
  /** Samples per confidence bin [k·w, (k+1)·w). */
  counts: number[];
  /** Of those, how many agree with the full model. */
  agreeCounts: number[];
}

export interface RampValidation {
  numSamples: number;
  /** Agreement with the full model over all samples (every sample exits here). */
  agreement: number;
  /** Accuracy against ground truth, when labels are known. */
  accuracy?: number;
  /** Lowest threshold keeping overall agreement ≥ 1 − budget when this ramp alone is active. */
  threshold: number;
  /** Fraction of samples exiting at that threshold. */
  exitFraction: number;
  /** Overall agreement at that threshold (exits that agree + non-exits, which agree by definition). */
  agreementAtThreshold: number;
  histogram: ConfidenceHistogram;
}

/**
 * The lowest threshold at which overall agreement stays ≥ 1 − budget: sort by confidence,
 * descending, and take the longest prefix whose disagreements fit the budget.
 */
export function thresholdForBudget(
  outputs: RampOutputs,
  finalPredictions: Int32Array,
  budget: number,
): { threshold: number; exitFraction: number; agreement: number } {
  const n = outputs.confidence.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => outputs.confidence[b]! - outputs.confidence[a]!);
  const maxDisagree = Math.floor(budget * n + 1e-9);
  let disagree = 0;
  let numExits = 0;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    const wouldDisagree = disagree + (outputs.prediction[i] !== finalPredictions[i] ? 1 : 0);
    if (wouldDisagree > maxDisagree) break;
    // Ties: a threshold cannot separate equal confidences, so include all of them or none.
    disagree = wouldDisagree;
    numExits = k + 1;
  }
  while (numExits > 0 && numExits < n && outputs.confidence[order[numExits - 1]!] === outputs.confidence[order[numExits]!]) {
    numExits--;
    disagree -= outputs.prediction[order[numExits]!] !== finalPredictions[order[numExits]!] ? 1 : 0;
  }
  const threshold = numExits === 0 ? 1.0001 : outputs.confidence[order[numExits - 1]!]!;
  return { threshold, exitFraction: numExits / n, agreement: 1 - disagree / n };
}

export function validateRamp(outputs: RampOutputs, finalPredictions: Int32Array, labels: Int32Array | undefined, budget: number): RampValidation {
  const n = outputs.confidence.length;
  let agree = 0;
  let correct = 0;
  const bins = 20;
  const histogram: ConfidenceHistogram = { binWidth: 1 / bins, counts: new Array<number>(bins).fill(0), agreeCounts: new Array<number>(bins).fill(0) };
  for (let i = 0; i < n; i++) {
    const agrees = outputs.prediction[i] === finalPredictions[i];
    if (agrees) agree++;
    if (labels && outputs.prediction[i] === labels[i]) correct++;
    const bin = Math.min(bins - 1, Math.floor(outputs.confidence[i]! * bins));
    histogram.counts[bin]!++;
    if (agrees) histogram.agreeCounts[bin]!++;
  }
  const chosen = thresholdForBudget(outputs, finalPredictions, budget);
  const result: RampValidation = {
    numSamples: n,
    agreement: agree / n,
    threshold: chosen.threshold,
    exitFraction: chosen.exitFraction,
    agreementAtThreshold: chosen.agreement,
    histogram,
  };
  if (labels) result.accuracy = correct / n;
  return result;
}
