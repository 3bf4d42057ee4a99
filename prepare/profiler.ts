/**
 * Latency profiles for preparation: each ONNX model (whole model, segment, ramp head) timed at
 * every batch size in onnxruntime with the serving settings (1 intra-op thread, no spinning),
 * after warm-up, as the median of repeated runs.
 */
import * as ort from 'onnxruntime-node';
import { monotonicNowNs } from '../shared/clock.js';
import { sessionOptions } from '../onnx/session-options.js';

export interface ProfileOptions {
  batchSizes: number[];
  /** Runs per batch size after warm-up (bounded by maxMsPerSize). Default 25. */
  numRuns: number;
  /** Warm-up runs per batch size; one suffices for runs longer than a quarter of maxMsPerSize. */
  numWarmup: number;
  /** Stop timing a batch size after this long, once it has MIN_TIMED_RUNS runs. Default 400 ms. */
  maxMsPerSize: number;
}

export const DEFAULT_PROFILE_OPTIONS: ProfileOptions = { batchSizes: [1, 2, 4, 8, 16], numRuns: 25, numWarmup: 3, maxMsPerSize: 400 };

export type FeedMaker = (batchSize: number) => Record<string, ort.Tensor>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/**
 * Timed runs a batch size gets however long each takes. A model whose run takes a good part of a
 * second (a BERT-base-shaped encoder: 0.1-2 s from batch 1 to 16 on one thread) is profiled by
 * every step of prepare several times over; 3 runs and 1 warm-up keep that to minutes, and runs
 * that long vary little (the median of 3 is what is kept).
 */
export const MIN_TIMED_RUNS = 3;

/** Median ms per batch size for a function that runs one batch. */
export async function timeBatches(run: (batchSize: number) => Promise<unknown>, options: ProfileOptions): Promise<Record<number, number>> {
  const profile: Record<number, number> = {};
  for (const b of options.batchSizes) {
    for (let i = 0; i < options.numWarmup; i++) {
      const t0 = monotonicNowNs();
      await run(b);
      if (monotonicNowNs() - t0 > (options.maxMsPerSize / 4) * 1e6) break;
    }
    const samples: number[] = [];
    const beginNs = monotonicNowNs();
    while (samples.length < options.numRuns && (samples.length < MIN_TIMED_RUNS || monotonicNowNs() - beginNs < options.maxMsPerSize * 1e6)) {
      const t0 = monotonicNowNs();
      await run(b);
      samples.push((monotonicNowNs() - t0) / 1e6);
    }
    profile[b] = median(samples);
  }
  return profile;
}

export async function openSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, sessionOptions({ device: 'cpu', intraOpNumThreads: 1 }));
}

/** Median ms per batch size of one model fed by `feeds`. */
export async function profileModel(bytes: Uint8Array, feeds: FeedMaker, options: ProfileOptions): Promise<Record<number, number>> {
  const session = await openSession(bytes);
  try {
    return await timeBatches((b) => session.run(feeds(b)), options);
  } finally {
    await session.release();
  }
}
