/**
 * Changing how a controller serves needs its admin token when it has one: `configure` from a
 * client, and repository load/unload over HTTP. Serving itself does not.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscapementClient } from '../../client/escapement-client.js';
import { randomInputs } from '../../client/input-tensors.js';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { checkLeaks } from '../support/leak-check.js';

const MODEL = 'mnist-cnn';
const manifest = loadModelEntry('models', MODEL).manifest;
const ADMIN = 'only-the-operator-knows';

describe('a controller started with --admin-token', () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    // the token from a file (the first line), as an operator keeps it out of the process list
    const tokenFile = join(mkdtempSync(join(tmpdir(), 'escapement-admin-')), 'admin-token');
    writeFileSync(tokenFile, `${ADMIN}\n`, { mode: 0o600 });
    cluster = await LocalCluster.start({
      numWorkers: 1,
      modelDir: 'models',
      simulate: true,
      preload: [MODEL],
      controllerArgs: ['--admin-token-file', tokenFile],
    });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('refuses configure without the token, or with a wrong one, and keeps its policy', async () => {
    await expect(client.configure({ policy: 'fifo' })).rejects.toThrow(/admin token/);
    await expect(client.configure({ policy: 'fifo', adminToken: 'guess' })).rejects.toThrow(/admin token/);
    // still the planner: an infeasible SLO is rejected at arrival (fifo would admit it and miss)
    expect((await client.submit(MODEL, randomInputs(manifest, 1), { sloMs: 0.05 })).status).toBe('REJECTED');
    await client.configure({ policy: 'fifo', batchTimeoutMs: 1, adminToken: ADMIN });
    expect((await client.submit(MODEL, randomInputs(manifest, 2), { sloMs: 0.05 })).status).toBe('DEADLINE_MISSED');
    await client.configure({ policy: 'deadline', adminToken: ADMIN });
  });

  it('serves requests and answers reads without it', async () => {
    expect((await client.submit(MODEL, randomInputs(manifest, 3), { sloMs: 500 })).status).toBe('OK');
    expect((await fetch(`${cluster.httpUrl}/v2/models/${MODEL}`)).status).toBe(200);
    expect((await fetch(`${cluster.httpUrl}/v2/repository/index`, { method: 'POST' })).status).toBe(200);
  });

  it('needs it as the bearer token to load or unload a model over HTTP', async () => {
    const unload = (headers: Record<string, string>) => fetch(`${cluster.httpUrl}/v2/repository/models/${MODEL}/unload`, { method: 'POST', headers });
    const refused = await unload({});
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: string }).error).toMatch(/admin token/);
    expect((await unload({ authorization: 'Bearer guess' })).status).toBe(403);
    expect(
      (await fetch(`${cluster.httpUrl}/v2/repository/models/${MODEL}/load`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } })).status,
    ).toBe(200);
  });
});
