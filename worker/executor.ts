/**
 * What runs models on a worker's device. The worker server owns policy-free bookkeeping
 * (windows, memory budget, validation); an executor only creates sessions, runs them one at a
 * time, and measures.
 */
import type { BatchProfileEntry, EarlyExitPlan, ExitFeedback, RampsWarmup, StageTiming } from '../shared/protocol.js';
import type { Tensor } from '../shared/tensor.js';
import type { ModelEntry } from '../shared/model-manifest.js';

export interface LoadOutcome {
  profile: BatchProfileEntry[];
  /** Memory the loaded model occupies (measured, or the file size when it cannot be). */
  weightsBytes: number;
}

export interface InferOutcome {
  /** One tensor per declared output, with `batchSize` rows (or the rows in `outputRows`). */
  outputs: Tensor[];
  stages: StageTiming[];
  /** With exits in compact mode: the batch rows the outputs hold. */
  outputRows?: number[];
  feedback?: ExitFeedback;
}

/** Rows answered at a ramp, reported while the INFER goes on. */
export interface ExitReport {
  siteId: number;
  rows: number[];
  confidences: number[];
  predictions: number[];
  numClasses: number;
  /** Local monotonic time of the answer. */
  atLocalNs: number;
  /** float32 [rows.length, numClasses] bytes. */
  probabilities: Uint8Array;
}

export interface InferOptions {
  /** Rows that carry requests (the rest is padding). */
  numRequests?: number;
  earlyExit?: EarlyExitPlan;
  onExit?: (report: ExitReport) => void;
}

export interface Executor {
  readonly device: string;
  /** Creates the model's session(s), warms up and profiles each batch size. */
  load(entry: ModelEntry, batchSizes: number[]): Promise<LoadOutcome>;
  unload(modelName: string): Promise<void>;
  /**
   * Builds (and keeps) the segment chain for a set of active ramps of a loaded package; with
   * `fused`, also the whole model with those ramps' heads as extra outputs.
   */
  prepareRamps(modelName: string, siteIds: number[], fused?: boolean, warmup?: RampsWarmup): Promise<void>;
  /** Runs a batch; with `options.earlyExit` and an early-exit package, as a chain with ramps. */
  infer(modelName: string, batchSize: number, inputs: Tensor[], options?: InferOptions): Promise<InferOutcome>;
  close(): Promise<void>;
}
