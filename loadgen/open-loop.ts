/**
 * An open-loop load generator: request i is sent at its scheduled time whatever happened to
 * earlier ones (no coordinated omission), with Poisson (seeded), evenly spaced or bursty gaps
 * (gamma-distributed with a given coefficient of variation: CV 1 is Poisson, CV 10 bursts).
 */
import { getPriority } from 'node:os';
import { monotonicNowNs } from '../shared/clock.js';
import { seededRandom } from '../shared/seeded-random.js';
import { gammaSample } from '../traces/arrival-process.js';
import { waitUntilNs } from './send-pacing.js';
import { setProcessNiceness } from '../shared/thread-priority.js';
import type { Tensor } from '../shared/tensor.js';
import type { EscapementClient, InferResponse } from '../client/escapement-client.js';

export interface OpenLoopOptions {
  model: string;
  numRequests: number;
  /** Mean arrival rate, requests per second. */
  ratePerSec: number;
  sloMs: number;
  /**
   * Poisson gaps (default), evenly spaced, or gamma gaps with coefficient of variation `cv`; or
   * `offsetsNs`: each request's send time from the start, as given (a trace's schedule; then
   * `numRequests`, `ratePerSec`, `seed` and `cv` are not used).
   */
  arrivals?: 'poisson' | 'uniform' | 'gamma' | { offsetsNs: readonly number[] };
  /** `gamma` arrivals: coefficient of variation of the gaps. Default 1. */
  cv?: number;
  seed?: number;
  /** Inputs of request i. */
  inputsFor: (i: number) => Tensor[];
  onProgress?: (numSent: number, numAnswered: number) => void;
  /**
   * Run the loop with every thread of this process at this niceness (Linux; the previous one is
   * restored after). On a host that also runs the serving processes at a raised priority (they
   * default to -10), a load generator at the default one fell behind its schedule by 8-23 ms
   * about five times a second at 1,150 requests/s on two cores (56 such pauses in 12 s; 1 at
   * -10), and each pause's requests then arrived as one burst: the benchmark no longer offered
   * the arrival process it meant to.
   */
  niceness?: number;
}

export interface OpenLoopResult {
  responses: InferResponse[];
  /** How late each send was against its schedule (ms). */
  scheduleLagMs: number[];
  durationSec: number;
  /** Why `niceness` could not be applied (undefined when it was, or none was asked). */
  nicenessRefused?: string;
}

export function arrivalOffsetsNs(numRequests: number, ratePerSec: number, arrivals: 'poisson' | 'uniform' | 'gamma', seed: number, cv = 1): number[] {
  const offsets: number[] = [];
  if (arrivals === 'gamma') {
    const random = seededRandom(seed);
    const shape = 1 / (cv * cv);
    let t = 0;
    for (let i = 0; i < numRequests; i++) {
      offsets.push(t);
      t += (gammaSample(shape, random) / shape) * (1e9 / ratePerSec);
    }
    return offsets;
  }
  let state = seed >>> 0 || 1;
  let t = 0;
  for (let i = 0; i < numRequests; i++) {
    offsets.push(t);
    if (arrivals === 'uniform') {
      t += 1e9 / ratePerSec;
    } else {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const u = (state + 1) / 2 ** 32;
      t += (-Math.log(u) / ratePerSec) * 1e9;
    }
  }
  return offsets;
}

export async function runOpenLoop(client: EscapementClient, options: OpenLoopOptions): Promise<OpenLoopResult> {
  if (options.niceness === undefined) return await sendOnSchedule(client, options);
  const previous = getPriority();
  const refused = setProcessNiceness(options.niceness);
  try {
    return { ...(await sendOnSchedule(client, options)), ...(refused ? { nicenessRefused: refused } : {}) };
  } finally {
    if (!refused) setProcessNiceness(previous);
  }
}

async function sendOnSchedule(client: EscapementClient, options: OpenLoopOptions): Promise<OpenLoopResult> {
  const arrivals = options.arrivals ?? 'poisson';
  const offsets =
    typeof arrivals === 'object' ? arrivals.offsetsNs : arrivalOffsetsNs(options.numRequests, options.ratePerSec, arrivals, options.seed ?? 1, options.cv ?? 1);
  const responses: InferResponse[] = [];
  const scheduleLagMs: number[] = [];
  const inflight: Promise<void>[] = [];
  const startNs = monotonicNowNs() + 5_000_000;
  let numAnswered = 0;
  for (let i = 0; i < offsets.length; i++) {
    const dueNs = startNs + offsets[i]!;
    scheduleLagMs.push((await waitUntilNs(dueNs)) / 1e6);
    inflight.push(
      client.submit(options.model, options.inputsFor(i), { sloMs: options.sloMs }).then((r) => {
        responses[i] = r;
        numAnswered++;
      }),
    );
    if (options.onProgress && i % 100 === 0) options.onProgress(i + 1, numAnswered);
  }
  await Promise.all(inflight);
  options.onProgress?.(offsets.length, numAnswered);
  return { responses, scheduleLagMs, durationSec: (monotonicNowNs() - startNs) / 1e9 };
}
