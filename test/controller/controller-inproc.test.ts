/**
 * The controller adapter in this process: its ROUTERs bound to `inproc://` endpoints, a fake
 * worker (test/support/rogue-worker.ts, answering as a well-behaved worker would) and a client
 * socket beside it, and a virtual clock with timers that fire only when the test advances time.
 * The integration tests run the same adapter as spawned processes over TCP.
 */
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { ControllerServer } from '../../controller/controller-server.js';
import type { LoopTimers } from '../../controller/planning-loop.js';
import { decodeMessage, encodeMessage } from '../../shared/codec.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import type { Action, ActionResultMsg, ResponseMsg } from '../../shared/protocol.js';
import { RogueWorker } from '../support/rogue-worker.js';

const MODEL = 'mnist-cnn';
const entry = loadModelEntry('models', MODEL);

/** A clock that moves only when told, and timers due on it; `soon` work still runs after the current turn. */
class VirtualTime {
  nowNs = 1e12;
  private readonly due = new Map<number, { atNs: number; fn: () => void }>();
  private next = 1;
  readonly timers: LoopTimers = {
    soon: (fn) => void setImmediate(fn),
    after: (fn, delayMs) => {
      this.due.set(this.next, { atNs: this.nowNs + delayMs * 1e6, fn });
      return this.next++;
    },
    cancel: (handle) => void this.due.delete(handle as number),
  };

  /** Moves the clock on and runs every timer that came due, in order (those they arm too). */
  advanceMs(ms: number): void {
    this.nowNs += ms * 1e6;
    for (;;) {
      const [handle, timer] = [...this.due].filter(([, t]) => t.atNs <= this.nowNs).sort((a, b) => a[1].atNs - b[1].atNs)[0] ?? [];
      if (handle === undefined || !timer) return;
      this.due.delete(handle);
      timer.fn();
    }
  }
}

/** What a worker that runs every action at once, in 1 ms, answers (INFER outputs: row r holds r + 1). */
function wellBehaved(action: Action, nowNs: number): Buffer[][] {
  const startNs = Math.min(nowNs, action.expectedStartNs);
  const timing = { receivedNs: startNs, startNs, endNs: startNs + 1e6, durationNs: 1e6, sentNs: startNs + 1e6 };
  const result: ActionResultMsg = { type: 'result', actionId: action.actionId, actionType: action.type, modelName: action.modelName, code: 0, timing };
  if (action.type === 'load') {
    result.profile = action.batchSizes.map((b) => ({ batchSize: b, durationNs: 1e6 + b * 1e5, p99DurationNs: 1.2e6 + b * 1e5 }));
    result.weightsBytes = 1e6;
  }
  if (action.type !== 'infer') return [encodeMessage(result)];
  const output = entry.manifest.outputs[0]!;
  result.outputs = [{ name: output.name, dtype: 'float32', shape: [action.batchSize, 10] }];
  const values = Float32Array.from({ length: action.batchSize * 10 }, (_, i) => Math.floor(i / 10) + 1);
  return [encodeMessage(result, [new Uint8Array(values.buffer)])];
}

describe('the controller in process (inproc:// endpoints, a fake worker, a virtual clock)', () => {
  const closing: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  async function setUp(answerInfers: boolean) {
    const time = new VirtualTime();
    const logged: string[] = [];
    const name = randomUUID();
    const server = new ControllerServer({
      host: '127.0.0.1',
      workerPort: 0,
      clientPort: 0,
      endpoints: { workers: `inproc://workers-${name}`, clients: `inproc://clients-${name}` },
      models: new Map([[MODEL, entry]]),
      scheduler: {},
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: 1000,
      preloadModels: [MODEL],
      exitMode: 'off',
      adjustRamps: false,
      nowNs: () => time.nowNs,
      timers: time.timers,
      log: (line) => void logged.push(line),
    });
    const { workerUrl, clientUrl } = await server.start();
    closing.push(() => server.close());
    expect(workerUrl).toBe(`inproc://workers-${name}`);
    const worker = new RogueWorker({
      workerUrl,
      workerId: 'w1',
      answer: (action) => (action.type === 'infer' && !answerInfers ? [] : wellBehaved(action, time.nowNs)),
    });
    closing.push(() => worker.close());
    const client = new zmq.Dealer({ linger: 0 });
    client.connect(clientUrl);
    closing.push(() => client.close());
    await until(() => worker.actionsReceived.some((a) => a.type === 'load') && server.modelReady(MODEL));
    const submit = async (requestId: string) => {
      const pixels = new Float32Array(784);
      await client.send(
        encodeMessage({ type: 'submit', requestId, model: MODEL, sloMs: 500, inputs: [{ name: 'Input3', dtype: 'float32', shape: [1, 1, 28, 28] }] }, [
          new Uint8Array(pixels.buffer),
        ]),
      );
    };
    const receive = async () => decodeMessage((await client.receive()) as Buffer[]);
    return { server, worker, time, submit, receive, logged };
  }

  it('registers the worker, loads the pinned model, and answers a request with its row of the outputs', async () => {
    const { server, worker, submit, receive } = await setUp(true);
    expect(server.isReady()).toBe(true);
    await submit('r1');
    const { header, tensors } = await receive();
    const response = header as ResponseMsg;
    expect(response).toMatchObject({ type: 'response', requestId: 'r1', status: 'OK', code: 0, workerId: 'w1', batchSize: 1 });
    expect(Array.from(new Float32Array(tensors[0]!.data.buffer, tensors[0]!.data.byteOffset, 10))).toEqual(Array(10).fill(1));
    expect(worker.actionsReceived.map((a) => a.type)).toEqual(['load', 'infer']);
    expect(server.status().counters).toMatchObject({ submitted: 1, answered: 1, malformed: 0 });
  });

  it('removes a worker silent for longer than the heartbeat timeout on its own clock, and answers what it held', async () => {
    const { server, worker, time, submit, receive, logged } = await setUp(false);
    await submit('r2');
    await until(() => worker.actionsReceived.some((a) => a.type === 'infer'));
    // Real time passes, the virtual clock does not: the worker stays (its heartbeats are not even needed).
    time.advanceMs(900);
    expect(server.isReady()).toBe(true);
    time.advanceMs(1200); // no heartbeat can arrive between the advance and the supervision it fires
    expect(server.isReady()).toBe(false);
    const response = (await receive()).header as ResponseMsg;
    expect(response.requestId).toBe('r2');
    expect(response.status).not.toBe('OK');
    expect(response.code).toBe(ErrorCode.WORKER_LOST);
    expect(logged.some((line) => /worker w1 removed: no heartbeat for 2100 ms/.test(line))).toBe(true);
    expect(server.status().numPending).toBe(0);
  });
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
