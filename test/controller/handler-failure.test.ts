/**
 * The controller's safety net, in process with real sockets: when handling one message throws
 * part-way (here: after the core folded a result and forgot its requests, before their answers
 * went out), the requests it touched are answered with INTERNAL_ERROR, and serving goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscapementClient } from '../../client/escapement-client.js';
import { randomInputs } from '../../client/input-tensors.js';
import { ControllerServer } from '../../controller/controller-server.js';
import { monotonicNowNs } from '../../shared/clock.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import type { Action } from '../../shared/protocol.js';
import { hostilePack, RogueWorker } from '../support/rogue-worker.js';

const MODEL = 'mnist-cnn';
const entry = loadModelEntry('models', MODEL);

/** A well-behaved fake worker: instant LOADs, and INFERs answered with zero logits. */
function honestAnswer(action: Action): Buffer[][] {
  const nowNs = monotonicNowNs(); // same process, same clock as the controller
  const timing = { receivedNs: nowNs, startNs: nowNs, endNs: nowNs, durationNs: 1e5, sentNs: nowNs };
  const header = { type: 'result', actionId: action.actionId, actionType: action.type, modelName: action.modelName, code: 0, timing };
  if (action.type === 'load')
    return [[hostilePack({ ...header, profile: action.batchSizes.map((b) => ({ batchSize: b, durationNs: 1e5, p99DurationNs: 2e5 })) })]];
  if (action.type !== 'infer') return [[hostilePack(header)]];
  const output = entry.manifest.outputs[0]!;
  const shape = [action.batchSize, ...output.shape.slice(1)];
  return [[hostilePack({ ...header, outputs: [{ name: output.name, dtype: output.dtype, shape }] }), Buffer.alloc(4 * shape.reduce((a, b) => a * b, 1))]];
}

describe('a handler that throws part-way', () => {
  let server: ControllerServer;
  let worker: RogueWorker;
  let client: EscapementClient;
  const logs: string[] = [];

  beforeAll(async () => {
    server = new ControllerServer({
      host: '127.0.0.1',
      workerPort: 0,
      clientPort: 0,
      models: new Map([[MODEL, entry]]),
      scheduler: {},
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: 5000,
      preloadModels: [MODEL],
      exitMode: 'off',
      adjustRamps: false,
      log: (line) => logs.push(line),
    });
    const { workerUrl, clientUrl } = await server.start();
    worker = new RogueWorker({ workerUrl, workerId: 'w0', answer: honestAnswer });
    client = await EscapementClient.connect(clientUrl);
    for (let i = 0; i < 100 && server.core.modelState(MODEL) !== 'ready'; i++) await new Promise((r) => setTimeout(r, 20));
  });

  afterAll(async () => {
    await client?.close();
    await worker?.close();
    await server?.close();
  });

  it('answers the requests of the batch it was handling with INTERNAL_ERROR, and keeps serving', async () => {
    expect(server.core.modelState(MODEL)).toBe('ready');
    const original = server.core.onResult.bind(server.core);
    let thrown = 0;
    server.core.onResult = (workerId, msg, nowNs) => {
      const fold = original(workerId, msg, nowNs);
      if (msg.actionType === 'infer' && thrown++ === 0) throw new Error('planted failure after the fold');
      return fold;
    };
    const responses = await Promise.all(
      Array.from({ length: 6 }, (_, i) => client.submit(MODEL, randomInputs(entry.manifest, i), { sloMs: 1000, timeoutMs: 3000 })),
    );
    const codes = responses.map((r) => r.code);
    expect(codes).not.toContain(ErrorCode.CLIENT_TIMEOUT);
    expect(codes).toContain(ErrorCode.INTERNAL_ERROR);
    expect(codes.every((c) => c === ErrorCode.OK || c === ErrorCode.INTERNAL_ERROR)).toBe(true);
    expect(logs.some((l) => l.includes('planted failure'))).toBe(true);
    // the read loop survived: later requests are served
    const after = await Promise.all(
      Array.from({ length: 4 }, (_, i) => client.submit(MODEL, randomInputs(entry.manifest, i), { sloMs: 1000, timeoutMs: 3000 })),
    );
    expect(after.map((r) => r.status)).toEqual(['OK', 'OK', 'OK', 'OK']);
    expect(server.counters.handlerErrors).toBe(1);
    expect(client.answerCounts).toEqual({ duplicate: 0, unknown: 0 });
  });

  it('refuses a batch timeout a Node timer cannot hold (2^31 ms would become a busy loop)', async () => {
    await expect(client.configure({ batchTimeoutMs: 2 ** 31 })).rejects.toThrow(/batchTimeoutMs must be in \[0, 60000\]/);
    await expect(client.configure({ batchTimeoutMs: 5 })).resolves.toBeUndefined();
  });
});
