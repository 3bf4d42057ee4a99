/**
 * What runs models on a worker's device. The worker server owns policy-free bookkeeping
 * (windows, memory budget, validation); an executor only creates sessions, runs them one at a
 * time, and measures.
 */
import type { BatchProfileEntry, StageTiming } from '../shared/protocol.js';
import type { Tensor } from '../shared/tensor.js';
import type { ModelEntry } from '../shared/model-manifest.js';

export interface LoadOutcome {
  profile: BatchProfileEntry[];
  /** Memory the loaded model occupies (measured, or the file size when it cannot be). */
  weightsBytes: number;
}

export interface InferOutcome {
  /** One tensor per declared output, with `batchSize` rows. */
  outputs: Tensor[];
  stages: StageTiming[];
}

export interface Executor {
  readonly device: string;
  /** Creates the model's session(s), warms up and profiles each batch size. */
  load(entry: ModelEntry, batchSizes: number[]): Promise<LoadOutcome>;
  unload(modelName: string): Promise<void>;
  infer(modelName: string, batchSize: number, inputs: Tensor[]): Promise<InferOutcome>;
  close(): Promise<void>;
}
