/**
 * Clockwork's many-model setup with real processes: a controller serving three copies of one
 * package (each loaded on its own), and `escapement replay` spreading a per-minute Azure
 * Functions trace over them, function i (by volume) → copy i % 3.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaks } from '../support/leak-check.js';
import { EscapementClient } from '../../client/escapement-client.js';
import { cliEntryPath, LocalCluster } from '../../cluster/local-cluster.js';

const MODEL = 'mnist-cnn';
const scratch = mkdtempSync(join(tmpdir(), 'escapement-copies-'));

describe('model copies', () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    cluster = await LocalCluster.start({ numWorkers: 2, modelDir: 'models', controllerArgs: ['--model-copies', '3'] });
    client = await EscapementClient.connect(cluster.clientUrl);
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('replays a per-function trace over the copies: function i by volume → copy i % 3', () => {
    const out = join(scratch, 'replay');
    const args = [
      'replay',
      '--controller',
      cluster.clientUrl,
      '--trace',
      'traces/azure-functions-format-fixture.csv',
      '--model',
      MODEL,
      '--copies',
      '3',
      '--distribution',
      'uniform',
      '--time-scale',
      '600',
      '--max-seconds',
      '3',
      '--slo-ms',
      '5000',
      '--warmup-s',
      '0.5',
      '--out',
      out,
    ];
    const run = spawnSync(process.execPath, [cliEntryPath(), ...args], { encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/\[#{20}\] sent (\d+)\/\1 {2}answered \1 {2}early 0 {2}rejected 0 {2}missed 0 {2}errors 0/); // the finished progress bar
    const warmed = Number(/warm-up: (\d+) requests, not measured/.exec(run.stderr)?.[1]);
    expect(warmed).toBeGreaterThan(0);
    for (const name of ['all models', MODEL, `${MODEL}@1`, `${MODEL}@2`]) expect(run.stdout).toContain(name);
    const [header, ...lines] = readFileSync(join(out, 'requests.csv'), 'utf8').trim().split('\n');
    const columns = header!.split(',');
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [columns[i], v])));
    expect(rows.length).toBeGreaterThan(50);
    expect(rows.length).toBe(Number(/replaying (\d+) requests/.exec(run.stderr)![1])); // the warm-up is not in the report
    const perModel = new Map<string, number>();
    for (const r of rows) {
      perModel.set(r.model!, (perModel.get(r.model!) ?? 0) + 1);
      expect(r.status).toBe('OK');
    }
    expect([...perModel.keys()].sort()).toEqual([MODEL, `${MODEL}@1`, `${MODEL}@2`]);
    // the fixture has four functions of similar volume: copy 0 serves the 1st and the 4th
    expect(perModel.get(MODEL)!).toBeGreaterThan(1.5 * perModel.get(`${MODEL}@1`)!);
    expect(perModel.get(MODEL)!).toBeGreaterThan(1.5 * perModel.get(`${MODEL}@2`)!);
  });

  it('loads every copy as a model of its own', async () => {
    const status = await client.status();
    expect(
      status.models
        .map((m) => m.name)
        .filter((n) => n.startsWith(MODEL))
        .sort(),
    ).toEqual([MODEL, `${MODEL}@1`, `${MODEL}@2`]);
    const loaded = new Set(status.workers.flatMap((w) => w.models.filter((m) => m.state === 'loaded').map((m) => m.name)));
    for (const name of [MODEL, `${MODEL}@1`, `${MODEL}@2`]) expect(loaded.has(name)).toBe(true);
  });

  it('says which copies the controller does not serve, and how to serve them', () => {
    const args = [
      'replay',
      '--controller',
      cluster.clientUrl,
      '--trace',
      'traces/azure-functions-format-fixture.csv',
      '--model',
      MODEL,
      '--copies',
      '5',
      '--time-scale',
      '600',
      '--max-seconds',
      '1',
      '--slo-ms',
      '5000',
      '--out',
      join(scratch, 'five'),
    ];
    const run = spawnSync(process.execPath, [cliEntryPath(), ...args], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0); // rejections are answers, not errors
    expect(run.stderr).toMatch(/does not serve mnist-cnn@\d.*start it with --model-copies 5/);
  });

  it('answers a copy the controller does not serve with UNKNOWN_MODEL', async () => {
    const response = await client.submit(`${MODEL}@3`, [], { sloMs: 100 });
    expect(response.status).toBe('REJECTED');
    expect(response.message).toMatch(/unknown model/);
  });
});
