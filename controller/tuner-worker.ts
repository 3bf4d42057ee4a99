/**
 * The threshold search's own thread (see tuner-thread.ts): answers each request with
 * `tuneThresholds`, writing the result as JSON into the shared buffer and waking the controller,
 * which waits for it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { tuneThresholds, type TunerRamp, type TunerSample, type TunerOptions } from '../shared/threshold-tuner.js';

interface SearchRequest {
  seq: number;
  samples: TunerSample[];
  ramps: TunerRamp[];
  wholeMs: number;
  overrides: Partial<TunerOptions>;
}

const { shared } = workerData as { shared: SharedArrayBuffer };
// [0]: the sequence number of the last answer; [1]: its length in bytes (-1: did not fit).
const header = new Int32Array(shared, 0, 2);
const body = new Uint8Array(shared, 8);
const encoder = new TextEncoder();

parentPort!.on('message', (request: SearchRequest) => {
  const answer = encoder.encode(JSON.stringify(tuneThresholds(request.samples, request.ramps, request.wholeMs, request.overrides)));
  if (answer.length <= body.length) body.set(answer);
  header[1] = answer.length <= body.length ? answer.length : -1;
  Atomics.store(header, 0, request.seq);
  Atomics.notify(header, 0);
});
