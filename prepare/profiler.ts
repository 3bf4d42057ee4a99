/**
 * Latency profiles for preparation: each ONNX model (whole model, segment, ramp head) timed at
 * every batch size in onnxruntime with the serving settings (1 intra-op thread, no spinning),
 * after warm-up, as the median of repeated runs.
 */
import * as ort from 'onnxruntime-node';
import { monotonicNowNs } from '../shared/clock.js';
import { sessionOptions } from '../worker/session-options.js';

export interface ProfileOptions {
  batchSizes: number[];
  /** Runs per batch size after warm-up (bounded by maxMsPerSize). Default 25. */
  numRuns: number;
  numWarmup: number;
  /** Stop timing a batch size after this long. Default 400 ms. */
  maxMsPerSize: number;
}

export const DEFAULT_PROFILE_OPTIONS: ProfileOptions = { batchSizes: [1, 2, 4, 8, 16], numRuns: 25, numWarmup: 3, maxMsPerSize: 400 };

export type FeedMaker = (batchSize: number) => Record<string, ort.Tensor>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/** Median ms per batch size for a function that runs one batch. */
export async function timeBatches(run: (batchSize: number) => Promise<unknown>, options: ProfileOptions): Promise<Record<number, number>> {
  const profile: Record<number, number> = {};
  for (const b of options.batchSizes) {
    for (let i = 0; i < options.numWarmup; i++) await run(b);
    const samples: number[] = [];
    const beginNs = monotonicNowNs();
    while (samples.length < options.numRuns && (samples.length < 5 || monotonicNowNs() - beginNs < options.maxMsPerSize * 1e6)) {
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
