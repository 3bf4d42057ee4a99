/**
 * The floor under the serving path's overhead, measured on this machine: the round trip of a
 * small message between two processes over ZeroMQ DEALER/ROUTER on loopback (what each of the
 * client<->controller and controller<->worker legs costs at the least), and a worker_threads
 * postMessage round trip (the worker's main thread <-> its inference thread).
 *
 * Run as `node transport-floor.js echo PORT` it is the echo peer.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as zmq from 'zeromq';
import { monotonicNowNs } from '../shared/clock.js';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

async function echo(port: number): Promise<void> {
  const router = new zmq.Router();
  await router.bind(`tcp://127.0.0.1:${port}`);
  process.send!('ready');
  for await (const [identity, message] of router) await router.send([identity!, message!]);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Median round trip (ms) of a 100-byte message to an echo process and back. With `gapMs` > 0 the
 * trips are that far apart, as requests at low load are: both processes go idle in between and
 * every trip pays their wake-ups (measured here: 0.12 ms back to back, 0.34 ms 10 ms apart).
 */
export async function zmqRoundTripP50Ms(numTrips: number, port = 5931, gapMs = 0): Promise<number> {
  const child = fork(fileURLToPath(import.meta.url), ['echo', String(port)], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => child.once('message', resolve));
    const dealer = new zmq.Dealer();
    dealer.connect(`tcp://127.0.0.1:${port}`);
    const payload = Buffer.alloc(100);
    const samples: number[] = [];
    for (let i = 0; i < numTrips; i++) {
      const t0 = monotonicNowNs();
      await dealer.send(payload);
      await dealer.receive();
      samples.push((monotonicNowNs() - t0) / 1e6);
      if (gapMs > 0) await pause(gapMs);
    }
    dealer.close();
    return median(samples.slice(numTrips / 10)); // the first tenth warms up
  } finally {
    child.kill();
  }
}

/** Median postMessage round trip (ms) to a worker thread and back; `gapMs` as above. */
export async function threadRoundTripP50Ms(numTrips: number, gapMs = 0): Promise<number> {
  const worker = new Worker('require("node:worker_threads").parentPort.on("message", (m) => require("node:worker_threads").parentPort.postMessage(m));', {
    eval: true,
  });
  const samples: number[] = [];
  for (let i = 0; i < numTrips; i++) {
    const t0 = monotonicNowNs();
    worker.postMessage({ i });
    await new Promise((resolve) => worker.once('message', resolve));
    samples.push((monotonicNowNs() - t0) / 1e6);
    if (gapMs > 0) await pause(gapMs);
  }
  await worker.terminate();
  return median(samples.slice(numTrips / 10));
}

if (process.argv[2] === 'echo') await echo(Number(process.argv[3]));
