/** Admission gives each client a bounded share of the pending requests (in process, real sockets). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscapementClient } from '../../client/escapement-client.js';
import { randomInputs } from '../../client/input-tensors.js';
import { ControllerServer } from '../../controller/controller-server.js';
import { monotonicNowNs } from '../../shared/clock.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { hostilePack, RogueWorker } from '../support/rogue-worker.js';

const MODEL = 'mnist-cnn';
const entry = loadModelEntry('models', MODEL);

describe('per-client admission', () => {
  let server: ControllerServer;
  let worker: RogueWorker;
  let greedy: EscapementClient;
  let other: EscapementClient;

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
      maxPendingPerClient: 3,
      log: () => undefined,
    });
    const { workerUrl, clientUrl } = await server.start();
    // loads instantly, then never answers an INFER: whatever is admitted stays pending
    worker = new RogueWorker({
      workerUrl,
      workerId: 'w0',
      answer: (a) => {
        const nowNs = monotonicNowNs();
        if (a.type !== 'load') return [];
        return [
          [
            hostilePack({
              type: 'result',
              actionId: a.actionId,
              actionType: 'load',
              modelName: a.modelName,
              code: 0,
              timing: { receivedNs: nowNs, startNs: nowNs, endNs: nowNs, durationNs: 1e5, sentNs: nowNs },
              profile: a.batchSizes.map((b) => ({ batchSize: b, durationNs: 1e5, p99DurationNs: 2e5 })),
            }),
          ],
        ];
      },
    });
    greedy = await EscapementClient.connect(clientUrl);
    other = await EscapementClient.connect(clientUrl);
    for (let i = 0; i < 100 && server.core.modelState(MODEL) !== 'ready'; i++) await new Promise((r) => setTimeout(r, 20));
  });

  afterAll(async () => {
    await greedy?.close();
    await other?.close();
    await worker?.close();
    await server?.close();
  });

  it('refuses a client beyond its share with QUEUE_FULL while another client is still admitted', async () => {
    const submit = (client: EscapementClient, i: number) => client.submit(MODEL, randomInputs(entry.manifest, i), { sloMs: 60_000, timeoutMs: 120_000 });
    const held = Array.from({ length: 3 }, (_, i) => submit(greedy, i));
    const refused = await submit(greedy, 3);
    expect(refused).toMatchObject({ status: 'REJECTED', code: ErrorCode.QUEUE_FULL });
    expect(refused.message).toMatch(/limit 3 per client/);
    const admitted = submit(other, 4);
    await new Promise((r) => setTimeout(r, 200));
    expect((await server.status()).numPending).toBe(4); // three of the greedy client's, one of the other's
    void held;
    void admitted;
  });
});
