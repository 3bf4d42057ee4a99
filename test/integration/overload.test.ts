/**
 * Three times more load than one (simulated, slow) worker can take: infeasible requests are
 * rejected at arrival with a reason, queues and memory stay bounded, every request gets one
 * answer, and the controller's event loop stays responsive. Goodput against capacity is measured
 * in `npm run bench:reliability`, not asserted here (timing on shared machines is noisy).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaks } from '../support/leak-check.js';
import { EscapementClient } from '../../client/escapement-client.js';
import { randomInputs } from '../../client/input-tensors.js';
import { runOpenLoop } from '../../loadgen/open-loop.js';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { loadModelEntry } from '../../shared/model-manifest.js';

const MODEL = 'mnist-cnn';
const manifest = loadModelEntry('models', MODEL).manifest;
// 5 ms + 1 ms per item: a batch of 16 takes 21 ms, so one worker serves ~760 requests/s.
const CAPACITY_RPS = 16 / 0.021;

describe('at 3x overload', () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    cluster = await LocalCluster.start({ numWorkers: 1, modelDir: 'models', simulate: true, preload: [MODEL], workerArgs: ['--sim-latency', '5000,1000'] });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
  });
  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('rejects what cannot make it at arrival, answers everything, and stays responsive', async () => {
    const inputs = randomInputs(manifest, 1);
    const numRequests = Math.round(3 * CAPACITY_RPS * 2);
    let maxQueued = 0;
    const probe = setInterval(async () => {
      const status = await client.status();
      maxQueued = Math.max(maxQueued, status.numQueued);
    }, 200);
    const result = await runOpenLoop(client, { model: MODEL, numRequests, ratePerSec: 3 * CAPACITY_RPS, sloMs: 100, seed: 9, inputsFor: () => inputs });
    clearInterval(probe);
    expect(result.responses.filter((r) => r !== undefined)).toHaveLength(numRequests);
    const rejected = result.responses.filter((r) => r.status === 'REJECTED');
    const ok = result.responses.filter((r) => r.status === 'OK');
    expect(rejected.length).toBeGreaterThan(numRequests / 3); // about two thirds cannot be served
    for (const r of rejected) expect([ErrorCode.CANNOT_MEET_DEADLINE, ErrorCode.QUEUE_FULL]).toContain(r.code);
    expect(rejected[0]!.message).toMatch(/earliest predicted completion/);
    expect(ok.length).toBeGreaterThan(numRequests / 6);
    expect(result.responses.filter((r) => r.status === 'ERROR')).toHaveLength(0);
    // bounded: the queue never holds more than ~an SLO's worth of work
    expect(maxQueued).toBeLessThan(CAPACITY_RPS * 0.2);
    // (the controller's event-loop delay under overload is a benchmark output: bench:reliability, bench:soak)
    const status = await client.status();
    expect(status.memoryRssBytes).toBeLessThan(1024 * 2 ** 20);
  });
});
