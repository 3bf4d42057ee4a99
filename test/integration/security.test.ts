/**
 * Authenticated, encrypted transport: CURVE between controller, workers and clients with keys from
 * `escapement keys` (unknown keys are refused by the controller's ZAP handler), and a bearer token
 * on HTTP.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaks } from '../support/leak-check.js';
import { EscapementClient } from '../../client/escapement-client.js';
import { randomInputs } from '../../client/input-tensors.js';
import { cliEntryPath, LocalCluster } from '../../cluster/local-cluster.js';
import { readPeerKeys } from '../../shared/curve-keys.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { loadModelEntry } from '../../shared/model-manifest.js';

const MODEL = 'mnist-cnn';
const manifest = loadModelEntry('models', MODEL).manifest;
const scratch = mkdtempSync(join(tmpdir(), 'escapement-keys-'));
const keys = join(scratch, 'keys');
const strangers = join(scratch, 'strangers');

describe('CURVE and bearer-token security', () => {
  let cluster: LocalCluster;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    for (const out of [keys, strangers])
      expect(spawnSync(process.execPath, [cliEntryPath(), 'keys', '--out', out, '--workers', '1'], { encoding: 'utf8' }).status).toBe(0);
    cluster = await LocalCluster.start({
      numWorkers: 1,
      modelDir: 'models',
      simulate: true,
      preload: [MODEL],
      controllerArgs: ['--keys', keys, '--http-token', 's3cret'],
      workerArgs: ['--key', join(keys, 'worker-0.key.json')],
    });
  });

  afterAll(async () => {
    await cluster?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('serves a client holding an authorized key', async () => {
    const client = await EscapementClient.connect(cluster.clientUrl, { curve: readPeerKeys(join(keys, 'client.key.json')) });
    try {
      await cluster.waitUntilServing(client, [MODEL]);
      expect((await client.submit(MODEL, randomInputs(manifest, 1), { sloMs: 500 })).status).toBe('OK');
    } finally {
      await client.close();
    }
  });

  it('never answers a client whose key is unknown, or who has none', async () => {
    for (const curve of [readPeerKeys(join(strangers, 'client.key.json')), undefined]) {
      const client = await EscapementClient.connect(cluster.clientUrl, { syncClock: false, ...(curve ? { curve } : {}) });
      const response = await client.submit(MODEL, randomInputs(manifest, 2), { sloMs: 100, timeoutMs: 1500 });
      expect(response).toMatchObject({ status: 'ERROR', code: ErrorCode.CLIENT_TIMEOUT });
      await client.close();
    }
  });

  it('does not let a worker with an unknown key register', async () => {
    const intruder = spawn(
      process.execPath,
      [
        cliEntryPath(),
        'worker',
        '--controller',
        cluster.workerUrl,
        '--id',
        'intruder',
        '--simulate',
        '--model-dir',
        'models',
        '--key',
        join(strangers, 'worker-0.key.json'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    intruder.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    await new Promise((r) => setTimeout(r, 2500));
    intruder.kill('SIGKILL');
    expect(stdout).not.toContain('"event":"ready"');
    const client = await EscapementClient.connect(cluster.clientUrl, { curve: readPeerKeys(join(keys, 'client.key.json')) });
    const status = await client.status();
    await client.close();
    expect(status.workers.map((w) => w.id)).toEqual(['worker-0']);
  });

  it("does not let one worker's key register another worker id (keys are bound to ids)", async () => {
    expect(JSON.parse(readFileSync(join(keys, 'authorized-workers.json'), 'utf8'))).toEqual({ 'worker-0': expect.any(String) });
    const impostor = spawn(
      process.execPath,
      [
        cliEntryPath(),
        'worker',
        '--controller',
        cluster.workerUrl,
        '--id',
        'worker-9',
        '--simulate',
        '--model-dir',
        'models',
        '--key',
        join(keys, 'worker-0.key.json'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    impostor.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    await new Promise((r) => setTimeout(r, 2500));
    impostor.kill('SIGKILL');
    expect(stdout).not.toContain('"event":"ready"');
    const client = await EscapementClient.connect(cluster.clientUrl, { curve: readPeerKeys(join(keys, 'client.key.json')) });
    const status = await client.status();
    await client.close();
    expect(status.workers.map((w) => w.id)).toEqual(['worker-0']);
    expect(cluster.logTail()).toMatch(/refused hello from 'worker-9': no key is bound to worker id 'worker-9'/);
  });

  it('requires the bearer token on HTTP, except for health', async () => {
    expect((await fetch(`${cluster.httpUrl}/v2/health/live`)).status).toBe(200);
    const denied = await fetch(`${cluster.httpUrl}/v2/models/${MODEL}`);
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toBe('Bearer');
    expect((await fetch(`${cluster.httpUrl}/v2/models/${MODEL}`, { headers: { authorization: 'Bearer wrong!' } })).status).toBe(401);
    expect((await fetch(`${cluster.httpUrl}/v2/models/${MODEL}`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200);
    expect((await fetch(`${cluster.httpUrl}/metrics`)).status).toBe(401);
  });

  it('with keys and no admin token, refuses every reconfiguration, even from an authorized client', async () => {
    const client = await EscapementClient.connect(cluster.clientUrl, { curve: readPeerKeys(join(keys, 'client.key.json')) });
    try {
      await expect(client.configure({ policy: 'fifo' })).rejects.toThrow(/--keys and no admin token/);
    } finally {
      await client.close();
    }
    const unload = await fetch(`${cluster.httpUrl}/v2/repository/models/${MODEL}/unload`, { method: 'POST', headers: { authorization: 'Bearer s3cret' } });
    expect(unload.status).toBe(403);
    expect(cluster.logTail()).toMatch(/keys on and no --admin-token/);
  });
});
