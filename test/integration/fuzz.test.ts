/** Hostile inputs on every door of a real controller: no crash, a clear answer, nothing else affected. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaks } from '../support/leak-check.js';
import { fuzzController } from '../support/fuzzer.js';
import { EscapementClient } from '../../client/escapement-client.js';
import { randomInputs } from '../../client/input-tensors.js';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { loadModelEntry } from '../../shared/model-manifest.js';

const MODEL = 'mnist-cnn';
const manifest = loadModelEntry('models', MODEL).manifest;

describe('fuzzing the controller', () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    cluster = await LocalCluster.start({ numWorkers: 1, modelDir: 'models', simulate: true, preload: [MODEL] });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
  });
  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('answers every malformed client message once, refuses bad HTTP cleanly, and keeps serving', async () => {
    const report = await fuzzController(cluster, 150, 42);
    expect(report.numClientInputs).toBe(150);
    expect(report.numClientAnswers).toBe(report.numClientInputs);
    expect(report.numHttpUnexpected).toBe(0);
    expect(report.numHttpErrors).toBe(report.numHttpInputs);
    // still alive, still registered, still correct
    const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => client.submit(MODEL, randomInputs(manifest, i), { sloMs: 1000 })));
    expect(responses.every((r) => r.status === 'OK')).toBe(true);
    const status = await client.status();
    expect(status.workers.map((w) => w.id)).toEqual(['worker-0']);
    expect(status.counters.malformed).toBeGreaterThan(0);
  });
});
