/**
 * Runs one batch through the whole model with the active ramps' heads fused in as extra outputs:
 * release mode's run when requests wait behind the batch (the planner decides; see
 * controller/batch-estimates.ts). One `run()` gives the full model's answer for every row and,
 * per active ramp, each row's confidence and prediction, which the controller's threshold tuner
 * reads as it reads a chain's. Nobody is answered early: the heads' outputs appear only when the
 * whole run ends, so the full model's answer (never less accurate) is the one sent.
 *
 * Why it exists: a chain of segments costs 8-20 % more than the whole model on onnxruntime CPU
 * (each cut materialises an activation that the next session lays out again), so release mode
 * through the chain loses that much throughput; the fused model costs about 1 % (the heads).
 */
import type * as ort from 'onnxruntime-node';
import { bestClass } from './exit-runner.js';

export interface FusedModel {
  session: ort.InferenceSession;
  /** Active sites in depth order, each with the graph output holding its head's probabilities. */
  heads: { siteId: number; output: string }[];
}

export interface FusedRunResult {
  /** Final output of every row of the batch (padding included), as a whole-model run returns it. */
  finalOutput: ort.Tensor;
  feedback: { siteIds: number[]; confidences: number[][]; predictions: number[][]; finalPredictions: number[] };
  durationNs: number;
}

export async function runFused(
  fused: FusedModel,
  feeds: Record<string, ort.Tensor>,
  finalOutputName: string,
  numRequests: number,
  nowNs: () => number,
): Promise<FusedRunResult> {
  const t0 = nowNs();
  const outputs = await fused.session.run(feeds);
  const durationNs = nowNs() - t0;
  const finalOutput = outputs[finalOutputName]!;
  const finalData = finalOutput.data as Float32Array;
  const finalClasses = finalData.length / Math.max(1, finalOutput.dims[0]!);
  const finalPredictions = Array.from({ length: numRequests }, (_, row) => bestClass(finalData, row, finalClasses));
  const confidences: number[][] = [];
  const predictions: number[][] = [];
  for (const head of fused.heads) {
    const probs = outputs[head.output]!;
    const values = probs.data as Float32Array;
    const numClasses = probs.dims[1]!;
    const best = Array.from({ length: numRequests }, (_, row) => bestClass(values, row, numClasses));
    predictions.push(best);
    confidences.push(best.map((c, row) => values[row * numClasses + c]!));
  }
  return { finalOutput, feedback: { siteIds: fused.heads.map((h) => h.siteId), confidences, predictions, finalPredictions }, durationNs };
}
