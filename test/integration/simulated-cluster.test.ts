/**
 * Real controller and client processes with simulated workers (same protocol, windows and codes;
 * they sleep the modelled duration): liveness by application heartbeats.
 */
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('a frozen worker (SIGSTOP: its sockets stay up)', () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      numWorkers: 2,
      modelDir: 'models',
      simulate: true,
      preload: [MODEL],
      controllerArgs: ['--heartbeat-timeout-ms', '600'],
    });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('is declared dead by missed heartbeats; its requests are answered, none hang', async () => {
    const numRequests = 400;
    const run = runOpenLoop(client, { model: MODEL, numRequests, ratePerSec: 200, sloMs: 300, seed: 5, inputsFor: (i) => randomInputs(manifest, i) });
    await new Promise((r) => setTimeout(r, 500));
    cluster.signalWorker('worker-0', 'SIGSTOP');
    const result = await run;
    expect(result.responses.filter((r) => r !== undefined)).toHaveLength(numRequests);
    expect(new Set(result.responses.map((r) => r.requestId)).size).toBe(numRequests);
    for (const r of result.responses) {
      if (r.status === 'ERROR') expect(r.code).toBe(ErrorCode.WORKER_LOST);
      expect(r.code).not.toBe(ErrorCode.CLIENT_TIMEOUT);
    }
    const status = await client.status();
    expect(status.workers.map((w) => w.id)).toEqual(['worker-1']);
    expect(result.responses.slice(-50).filter((r) => r.status === 'OK').length).toBeGreaterThan(45);
  });

  it('re-registers when it wakes up and serves again', async () => {
    cluster.signalWorker('worker-0', 'SIGCONT');
    await cluster.waitUntilServing(client, [MODEL], 2, 10_000);
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => client.submit(MODEL, randomInputs(manifest, i), { sloMs: 500 })));
    expect(responses.every((r) => r.status === 'OK')).toBe(true);
  });
});

describe('configure: switching the policy and exit mode of a running controller', () => {
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

  it('applies a valid configuration and refuses an invalid one with a clear error', async () => {
    // an infeasible SLO is rejected by the planner but admitted (and answered late) by the fifo baseline
    expect((await client.submit(MODEL, randomInputs(manifest, 1), { sloMs: 0.05 })).status).toBe('REJECTED');
    await client.configure({ policy: 'fifo', batchTimeoutMs: 1 });
    expect((await client.submit(MODEL, randomInputs(manifest, 2), { sloMs: 0.05 })).status).toBe('DEADLINE_MISSED');
    await client.configure({ policy: 'deadline' });
    await expect(client.configure({ policy: 'lottery' as 'fifo' })).rejects.toThrow(/configure\.policy: 'deadline' or 'fifo', got "lottery"/);
    await expect(client.configure({ thresholds: 'frozen' as 'static' })).rejects.toThrow(/configure\.thresholds: 'online' or 'static', got "frozen"/);
    await client.configure({ thresholds: 'static' });
    await client.configure({ thresholds: 'online' });
    await expect(client.configure({ fixedThresholds: { model: MODEL, thresholds: [0.9] } })).rejects.toThrow(/serves no ramps/);
    await expect(client.configure({ fixedThresholds: { model: MODEL, thresholds: [Number.NaN] } })).rejects.toThrow();
    // ramp adjustment: on by default, switched per configure (compare's --fixed-ramps variant)
    const adjusting = async () => (await client.status()).adjustRamps;
    expect(await adjusting()).toBe(true);
    await client.configure({ adjustRamps: false });
    expect(await adjusting()).toBe(false);
    await expect(client.configure({ adjustRamps: 'no' as unknown as boolean })).rejects.toThrow(/adjustRamps/);
    await client.configure({ adjustRamps: true });
    expect(await adjusting()).toBe(true);
    expect((await client.submit(MODEL, randomInputs(manifest, 3), { sloMs: 500 })).status).toBe('OK');
  });
});

describe('restarts', () => {
  let cluster: LocalCluster;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    cluster = await LocalCluster.start({ numWorkers: 2, modelDir: 'models', simulate: true, preload: [MODEL] });
  });
  afterAll(() => cluster?.stop());

  it('a worker restarted with the same id rejoins cleanly and its models are placed again', async () => {
    const client = await EscapementClient.connect(cluster.clientUrl);
    try {
      await cluster.waitUntilServing(client, [MODEL]);
      cluster.signalWorker('worker-1', 'SIGKILL');
      await cluster.startWorker('worker-1');
      await cluster.waitUntilServing(client, [MODEL], 2, 10_000);
      // Which idle worker takes a request is up to the planner, so take the other one away: the
      // restarted worker must now serve everything alone.
      cluster.signalWorker('worker-0', 'SIGKILL');
      const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => client.submit(MODEL, randomInputs(manifest, i), { sloMs: 3000 })));
      expect(responses.filter((r) => r.status !== 'OK').map((r) => `${r.status} ${r.code}: ${r.message}`)).toEqual([]);
      expect(new Set(responses.map((r) => r.workerId))).toEqual(new Set(['worker-1']));
      await cluster.startWorker('worker-0');
    } finally {
      await client.close();
    }
  });

  it('after a controller crash, clients get an answer for what was in flight and workers re-register and reload by themselves', async () => {
    const client = await EscapementClient.connect(cluster.clientUrl);
    try {
      await cluster.waitUntilServing(client, [MODEL]);
      const inFlight = Array.from({ length: 20 }, (_, i) => client.submit(MODEL, randomInputs(manifest, i), { sloMs: 50_000, timeoutMs: 2000 }));
      await cluster.restartController();
      const answers = await Promise.all(inFlight);
      // every request got one final answer: served before the crash, a client-side timeout (lost
      // in the old controller), or, for one the client had not yet handed over when the old
      // controller died, the new controller's answer before any worker re-registered
      for (const a of answers) expect(['OK', 'ERROR', 'REJECTED']).toContain(a.status);
      for (const a of answers.filter((x) => x.status === 'ERROR')) expect(a.code, a.message).toBe(ErrorCode.CLIENT_TIMEOUT);
      for (const a of answers.filter((x) => x.status === 'REJECTED')) expect(a.code, a.message).toBe(ErrorCode.NO_WORKERS);
      const fresh = await EscapementClient.connect(cluster.clientUrl);
      try {
        await cluster.waitUntilServing(fresh, [MODEL], 2, 15_000);
        const after = await Promise.all(Array.from({ length: 20 }, (_, i) => fresh.submit(MODEL, randomInputs(manifest, i), { sloMs: 500 })));
        expect(after.every((r) => r.status === 'OK')).toBe(true);
      } finally {
        await fresh.close();
      }
    } finally {
      await client.close();
    }
  });
});

describe('a full log disk', () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  let dir: string;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'full-log-'));
    // /dev/full answers every write with ENOSPC, as a full disk does
    symlinkSync('/dev/full', join(dir, 'requests.csv'));
    cluster = await LocalCluster.start({ numWorkers: 1, modelDir: 'models', simulate: true, preload: [MODEL], controllerArgs: ['--log-dir', dir] });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops the telemetry logs, says why in the status, and goes on serving every request', async () => {
    const { responses } = await runOpenLoop(client, {
      model: MODEL,
      numRequests: 200,
      ratePerSec: 200,
      sloMs: 500,
      seed: 9,
      inputsFor: (i) => randomInputs(manifest, i),
    });
    expect(responses.filter((r) => r.status === 'OK')).toHaveLength(200);
    const status = await client.status();
    expect(status.telemetry?.stoppedBecause).toMatch(/requests\.csv: ENOSPC/);
    expect(status.telemetry?.droppedRows).toBeGreaterThan(100);
    expect(cluster.logTail()).toMatch(/telemetry logs in .* stopped/);
  });
});
