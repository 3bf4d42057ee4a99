/**
 * Hostile inputs for the controller's three doors (client port, worker port, HTTP), generated from
 * a seed: malformed frames, wrong msgpack, valid headers with wrong tensor sizes / dtypes / shapes,
 * huge declared sizes, unknown models, out-of-range deadlines, duplicate request ids, and random
 * bytes. The reliability test and benchmark send them and then check that the controller still
 * answers well-formed requests.
 */
import { pack } from 'msgpackr';
import * as zmq from 'zeromq';
import { seededRandom } from '../../traces/arrival-process.js';

export interface FuzzReport {
  numClientInputs: number;
  numWorkerInputs: number;
  numHttpInputs: number;
  /** Answers received on the client port (each malformed submit should get one). */
  numClientAnswers: number;
  /** HTTP responses with a 4xx status and an {"error"} body. */
  numHttpErrors: number;
  /** HTTP responses that were not a clean 4xx/5xx with an error body. */
  numHttpUnexpected: number;
}

const MODEL = 'mnist-cnn';

function clientCases(random: () => number, count: number): Buffer[][] {
  const input = (shape: unknown, dtype: unknown = 'float32') => [{ name: 'Input3', dtype, shape }];
  const templates: (() => Buffer[])[] = [
    () => [Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256)))],
    () => [pack([1, 2, 3])],
    () => [pack({ type: 'submit' })],
    () => [pack({ type: 'bogus', requestId: 'x' })],
    () => [pack({ type: 'submit', requestId: `u${random()}`, model: 'no-such-model', sloMs: 50, inputs: input([1, 1, 28, 28]) }), Buffer.alloc(3136)],
    () => [pack({ type: 'submit', requestId: `s${random()}`, model: MODEL, sloMs: 50, inputs: input([1, 1, 28, 27]) }), Buffer.alloc(3024)],
    () => [pack({ type: 'submit', requestId: `d${random()}`, model: MODEL, sloMs: 50, inputs: input([1, 1, 28, 28], 'int64') }), Buffer.alloc(6272)],
    () => [pack({ type: 'submit', requestId: `z${random()}`, model: MODEL, sloMs: 50, inputs: input([1, 1, 28, 28]) }), Buffer.alloc(17)],
    () => [pack({ type: 'submit', requestId: `h${random()}`, model: MODEL, sloMs: 50, inputs: input([1, 1, 2 ** 20, 2 ** 20]) }), Buffer.alloc(4)],
    () => [pack({ type: 'submit', requestId: `n${random()}`, model: MODEL, sloMs: -1, inputs: input([1, 1, 28, 28]) }), Buffer.alloc(3136)],
    () => [pack({ type: 'submit', requestId: `e${random()}`, model: MODEL, deadlineNs: 1, inputs: input([1, 1, 28, 28]) }), Buffer.alloc(3136)],
    () => [pack({ type: 'submit', requestId: `b${random()}`, model: MODEL, sloMs: 1e12, inputs: input([1, 1, 28, 28]) }), Buffer.alloc(3136)],
    () => [pack({ type: 'submit', requestId: 'dup', model: MODEL, sloMs: 10_000, inputs: input([1, 1, 28, 28]) }), Buffer.alloc(3136)],
  ];
  return Array.from({ length: count }, () => templates[Math.floor(random() * templates.length)]!());
}

function workerCases(random: () => number, count: number): Buffer[][] {
  const templates: (() => Buffer[])[] = [
    () => [Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256)))],
    () => [pack({ type: 'result', actionId: Math.floor(random() * 1e6), actionType: 'infer', modelName: MODEL, code: 0, timing: {} })],
    () => [pack({ type: 'heartbeat', workerId: 'ghost', epoch: 1, numQueuedActions: 0, usedMemoryBytes: 0, loadedModels: [] })],
    () => [pack({ type: 'hello', v: 99, workerId: 'x' })],
    () => [
      pack({
        type: 'exit',
        actionId: 1,
        modelName: MODEL,
        siteId: 0,
        rows: [0],
        confidences: [1],
        predictions: [0],
        atNs: 0,
        outputs: [{ name: 'p', dtype: 'float32', shape: [1, 10] }],
      }),
      Buffer.alloc(1),
    ],
  ];
  return Array.from({ length: count }, () => templates[Math.floor(random() * templates.length)]!());
}

function httpCases(random: () => number, count: number): { path: string; body: string | Buffer; headers?: Record<string, string> }[] {
  const infer = `/v2/models/${MODEL}/infer`;
  const templates: (() => { path: string; body: string | Buffer; headers?: Record<string, string> })[] = [
    () => ({ path: infer, body: Buffer.from(Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 256))) }),
    () => ({ path: infer, body: '{"inputs": 5}' }),
    () => ({ path: infer, body: JSON.stringify({ inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: [1] }] }) }),
    () => ({ path: infer, body: JSON.stringify({ inputs: [{ name: 'Input3', shape: [-1, 28], datatype: 'FP32', data: [] }] }) }),
    () => ({ path: infer, body: JSON.stringify({ inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'BYTES', data: [] }] }) }),
    () => ({ path: infer, body: '{"inputs": []}', headers: { 'inference-header-content-length': '999999' } }),
    () => ({ path: '/v2/models/no-such-model/infer', body: '{"inputs": []}' }),
    () => ({
      path: infer,
      body: JSON.stringify({ inputs: [{ name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(784).fill(0) }], parameters: { timeout: -5 } }),
    }),
  ];
  return Array.from({ length: count }, () => templates[Math.floor(random() * templates.length)]!());
}

/** Sends `count` hostile inputs through each door; resolves when the answers have had time to arrive. */
export async function fuzzController(urls: { clientUrl: string; workerUrl: string; httpUrl: string }, count: number, seed: number): Promise<FuzzReport> {
  const random = seededRandom(seed);
  const report: FuzzReport = { numClientInputs: 0, numWorkerInputs: 0, numHttpInputs: 0, numClientAnswers: 0, numHttpErrors: 0, numHttpUnexpected: 0 };

  // 1. client port: every malformed submit should be answered (an error), none should crash it
  const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: 2000 });
  dealer.connect(urls.clientUrl);
  const reader = (async () => {
    try {
      for (;;) {
        await dealer.receive();
        report.numClientAnswers++;
      }
    } catch {
      // receive timeout: the answers have stopped
    }
  })();
  for (const frames of clientCases(random, count)) {
    await dealer.send(frames);
    report.numClientInputs++;
  }
  await reader;
  dealer.close();

  // 2. worker port: forged and garbled worker messages
  const fake = new zmq.Dealer({ linger: 0, routingId: 'fuzzer' });
  fake.connect(urls.workerUrl);
  for (const frames of workerCases(random, count)) {
    await fake.send(frames);
    report.numWorkerInputs++;
  }
  fake.close();

  // 3. HTTP
  for (const c of httpCases(random, count)) {
    report.numHttpInputs++;
    try {
      const res = await fetch(`${urls.httpUrl}${c.path}`, {
        method: 'POST',
        body: c.body,
        headers: { 'content-type': 'application/json', ...(c.headers ?? {}) },
      });
      const text = await res.text();
      const body = JSON.parse(text) as { error?: string };
      if (res.status >= 400 && res.status < 600 && typeof body.error === 'string') report.numHttpErrors++;
      else report.numHttpUnexpected++;
    } catch {
      report.numHttpUnexpected++;
    }
  }
  return report;
}
