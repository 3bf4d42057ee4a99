/**
 * A registered rogue worker on a real controller's worker port (no keys, loopback): its forged
 * results, exits and heartbeats reach the handlers. The controller must refuse each one, stay up,
 * and still answer every client request exactly once (the real worker beside the rogue serves).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscapementClient } from '../../client/escapement-client.js';
import { randomInputs } from '../../client/input-tensors.js';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import type { Action, InferAction, LoadAction } from '../../shared/protocol.js';
import { checkLeaks } from '../support/leak-check.js';
import { hostilePack, RogueWorker } from '../support/rogue-worker.js';

const MODEL = 'mnist-cnn';
const manifest = loadModelEntry('models', MODEL).manifest;

function timing(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Number(process.hrtime.bigint()); // not the controller's clock; only the shape matters
  return { receivedNs: now, startNs: now, endNs: now + 1e6, durationNs: 1e6, sentNs: now + 1e6, ...overrides };
}

function result(action: Action, fields: Record<string, unknown>): Record<string, unknown> {
  return { type: 'result', actionId: action.actionId, actionType: action.type, modelName: action.modelName, code: 0, timing: timing(), ...fields };
}

/** The hand-found case: the first LOAD's result carries `endNs` as a msgpack int64 (a BigInt). */
function forgedLoad(load: LoadAction, attempt: number): Buffer[][] {
  if (attempt === 0) return [[hostilePack(result(load, { timing: timing({ endNs: 2n ** 62n }) }))]];
  // later LOADs succeed, so that INFERs (and their result handlers) come to the rogue
  const profile = load.batchSizes.map((batchSize) => ({ batchSize, durationNs: 1e5, p99DurationNs: 2e5 }));
  return [[hostilePack(result(load, { timing: timing({ endNs: 0, startNs: 0 }), profile, weightsBytes: 1000 }))]];
}

/** Hostile INFER answers, one per INFER in turn: each reaches a different nested field. */
const forgedInfers: ((a: InferAction) => Buffer[][])[] = [
  (a) => [[hostilePack(result(a, { timing: timing({ durationNs: 2n ** 63n - 1n }) }))]],
  (a) => [[hostilePack(result(a, { timing: timing({ durationNs: Number.NaN, endNs: -5 }) }))]],
  (a) => [[hostilePack(result(a, { timing: timing({ endNs: 1e300 }) }))]],
  (a) => [[hostilePack(result(a, { timing: new Set([1, 2]) }))]],
  (a) => [[hostilePack(result(a, { timing: timing({ startNs: new Date() }) }))]],
  (a) => [[hostilePack(result(a, { outputs: [{ name: 'Plus214_Output_0', dtype: 'float32', shape: [0, 10] }] })), Buffer.alloc(0)]],
  (a) => [[hostilePack(result(a, { outputRows: ['x', { y: 1 }], outputs: [] }))]],
  (a) => [[hostilePack(result(a, { feedback: { siteIds: 'all', confidences: 7, predictions: null, finalPredictions: [new Error('boom')] } }))]],
  (a) => [[hostilePack(result(a, { profile: [{ batchSize: -1, durationNs: 1n }], stages: [{ name: 5, durationNs: new Uint8Array(4) }] }))]],
  (a) => [
    [
      hostilePack({
        type: 'exit',
        actionId: a.actionId,
        modelName: a.modelName,
        siteId: 0,
        rows: [1e9, -1, 0.5],
        confidences: [2n],
        predictions: ['p'],
        atNs: 1,
        outputs: [{ name: 'p', dtype: 'float32', shape: [3, 10] }],
      }),
      Buffer.alloc(120),
    ],
  ],
  (a) => [
    [
      hostilePack({
        type: 'exit',
        actionId: a.actionId,
        modelName: a.modelName,
        siteId: 0,
        rows: [0],
        confidences: [0.9],
        predictions: [1],
        atNs: 1,
        outputs: [{ name: 'p', dtype: 'float32', shape: [0, 10] }],
      }),
      Buffer.alloc(0),
    ],
  ],
  (a) => [
    [
      hostilePack({
        type: 'heartbeat',
        workerId: 'rogue',
        epoch: 1,
        numQueuedActions: -1n,
        usedMemoryBytes: Number.POSITIVE_INFINITY,
        loadedModels: [new Map([[1, 2]])],
      }),
    ],
    [hostilePack(result(a, { code: 2n ** 40n }))],
  ],
];

describe('a registered rogue worker', () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  let rogue: RogueWorker;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    cluster = await LocalCluster.start({ numWorkers: 1, modelDir: 'models', simulate: true, preload: [MODEL], verbose: process.env.DEBUG_ROGUE === '1' });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
    let loads = 0;
    let infers = 0;
    rogue = new RogueWorker({
      workerUrl: cluster.workerUrl,
      workerId: 'rogue',
      answer: (action) => {
        if (action.type === 'load') return forgedLoad(action, loads++);
        if (action.type === 'infer') return forgedInfers[infers++ % forgedInfers.length]!(action);
        return [];
      },
    });
  }, 60_000);

  afterAll(async () => {
    await rogue?.close();
    await client?.close();
    await cluster?.stop();
  });

  it('cannot take the controller down: every request is answered by the server, and serving goes on', async () => {
    const deadline = Date.now() + 30_000;
    const numInfers = () => rogue.actionsReceived.filter((a) => a.type === 'infer').length;
    while (numInfers() < forgedInfers.length && Date.now() < deadline) {
      // keep traffic flowing until the rogue holds the model and has forged every kind of answer
      await Promise.all(Array.from({ length: 8 }, (_, i) => client.submit(MODEL, randomInputs(manifest, i), { sloMs: 2000 })));
    }
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => client.submit(MODEL, randomInputs(manifest, i), { sloMs: 2000 })));
    const byCode = responses.map((r) => `${r.status}/${r.code}`);
    expect(responses.filter((r) => r.code === ErrorCode.CLIENT_TIMEOUT).length, 'requests the controller never answered').toBe(0);
    expect(
      responses.every((r) => r.serverLatencyMs !== undefined || r.status === 'REJECTED'),
      byCode.join(' '),
    ).toBe(true);
    expect(numInfers(), 'the rogue did not reach the INFER handlers with every forgery').toBeGreaterThanOrEqual(forgedInfers.length);
    expect(responses.filter((r) => r.code === ErrorCode.INTERNAL_ERROR).map((r) => r.message)).toEqual([]);
    const status = await client.status();
    expect(status.counters.malformed).toBeGreaterThanOrEqual(forgedInfers.length);
    expect(status.counters.handlerErrors).toBe(0);
    expect(status.workers.map((w) => w.id)).toContain('worker-0');
    // A registered rogue can still swallow the requests planned on it until their actions are
    // overdue (only keys keep it out). Once it is gone, the controller serves everything again.
    await rogue.close();
    for (let i = 0; i < 50; i++) {
      const workers = (await client.status()).workers.map((w) => w.id);
      if (!workers.includes('rogue')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => client.submit(MODEL, randomInputs(manifest, i), { sloMs: 2000 })));
    // (a failure names each answer that was not OK, with its code and reason)
    expect(after.filter((r) => r.status !== 'OK').map((r) => `${r.status} ${r.code}: ${r.message}`)).toEqual([]);
    expect(client.answerCounts).toEqual({ duplicate: 0, unknown: 0 });
  }, 60_000);
});
