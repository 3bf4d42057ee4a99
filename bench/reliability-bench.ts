/**
 * `npm run bench:reliability`: faults, overload and hostile input against real processes
 * (simulated workers, so the numbers reflect the control plane, not the model). Prints a table and
 * writes bench/results/reliability.json.
 *
 * 1. Under a steady open-loop load: SIGKILL a worker, restart it with the same id, SIGSTOP the
 *    other, SIGCONT it, and SIGKILL + restart the controller. Measured: time to detect each dead or
 *    frozen worker, time to serve with every worker again, requests submitted vs answered.
 * 2. 3x overload on one slow worker: goodput against its capacity.
 * 3. Seeded hostile inputs on the client, worker and HTTP doors; crashes counted.
 */
import { ErrorCode } from '../shared/error-codes.js';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { EscapementClient, type InferResponse } from '../client/escapement-client.js';
import { randomInputs } from '../client/input-tensors.js';
import { formatTable } from '../loadgen/latency-summary.js';
import { runOpenLoop } from '../loadgen/open-loop.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { fuzzController } from '../test/support/fuzzer.js';

const MODEL = 'mnist-cnn';
const manifest = loadModelEntry('models', MODEL).manifest;
const inputs = randomInputs(manifest, 1);

function progress(line: string): void {
  process.stderr.write(`[bench:reliability] ${line}\n`);
}

async function workerIds(client: EscapementClient): Promise<string[]> {
  const status = await client.status();
  return status.workers
    .filter((w) => w.models.some((m) => m.state === 'loaded'))
    .map((w) => w.id)
    .sort();
}

/** Milliseconds until `predicate` holds, polling every 20 ms (up to 20 s). */
async function timeUntil(predicate: () => Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  while (!(await predicate().catch(() => false))) {
    if (performance.now() - t0 > 20_000) return Number.NaN;
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - t0;
}

async function faults() {
  const cluster = await LocalCluster.start({
    numWorkers: 2,
    modelDir: 'models',
    simulate: true,
    preload: [MODEL],
    workerArgs: ['--sim-latency', '2000,500'],
    controllerArgs: ['--heartbeat-timeout-ms', '600'],
  });
  const client = await EscapementClient.connect(cluster.clientUrl);
  try {
    await cluster.waitUntilServing(client, [MODEL]);
    const numRequests = 300 * 8;
    const load = runOpenLoop(client, { model: MODEL, numRequests, ratePerSec: 300, sloMs: 200, seed: 3, inputsFor: () => inputs });
    const detect: Record<string, number> = {};
    const recover: Record<string, number> = {};
    let faultsInjected = 0;
    await new Promise((r) => setTimeout(r, 1000));
    progress('SIGKILL worker-1 ...');
    cluster.signalWorker('worker-1', 'SIGKILL');
    faultsInjected++;
    detect.killedWorker = await timeUntil(async () => !(await workerIds(client)).includes('worker-1'));
    {
      const t0 = performance.now();
      await cluster.startWorker('worker-1'); // the same id: it takes over its old identity
      await cluster.waitUntilServing(client, [MODEL], 2, 20_000);
      recover.killedWorker = performance.now() - t0;
    }
    progress('SIGSTOP worker-0 ...');
    cluster.signalWorker('worker-0', 'SIGSTOP');
    faultsInjected++;
    detect.frozenWorker = await timeUntil(async () => !(await workerIds(client)).includes('worker-0'));
    cluster.signalWorker('worker-0', 'SIGCONT');
    recover.frozenWorker = await timeUntil(async () => (await workerIds(client)).length === 2);
    const answeredBeforeRestart = await load;
    progress('SIGKILL + restart the controller ...');
    const secondLoad = runOpenLoop(client, { model: MODEL, numRequests: 300, ratePerSec: 300, sloMs: 200, seed: 4, inputsFor: () => inputs });
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await cluster.restartController();
    faultsInjected++;
    const fresh = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(fresh, [MODEL], 2, 20_000);
    recover.controller = performance.now() - t0;
    await fresh.close();
    const second = await secondLoad;
    const all: (InferResponse | undefined)[] = [...answeredBeforeRestart.responses, ...second.responses];
    const submitted = numRequests + 300;
    // Only an answer from a server counts: a client-side timeout (what is in flight when the
    // controller is killed) is a lost request, not an answered one.
    const answered = all.filter((r) => r !== undefined && r.code !== ErrorCode.CLIENT_TIMEOUT && r.code !== ErrorCode.CLIENT_CLOSED).length;
    return { faultsInjected, submitted, answered, duplicated: client.answerCounts.duplicate, detect, recover, byStatus: countBy(all) };
  } finally {
    await client.close();
    await cluster.stop();
  }
}

function countBy(responses: (InferResponse | undefined)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of responses) if (r) counts[`${r.status}/${r.code}`] = (counts[`${r.status}/${r.code}`] ?? 0) + 1;
  return counts;
}

async function overload() {
  // 5 ms + 1 ms per item: batches of 16 take 21 ms; one worker serves ~762 requests/s.
  const capacityRps = 16 / 0.021;
  const cluster = await LocalCluster.start({ numWorkers: 1, modelDir: 'models', simulate: true, preload: [MODEL], workerArgs: ['--sim-latency', '5000,1000'] });
  const client = await EscapementClient.connect(cluster.clientUrl);
  try {
    await cluster.waitUntilServing(client, [MODEL]);
    const result = await runOpenLoop(client, {
      model: MODEL,
      numRequests: Math.round(3 * capacityRps * 3),
      ratePerSec: 3 * capacityRps,
      sloMs: 100,
      seed: 5,
      inputsFor: () => inputs,
    });
    const goodputRps = result.responses.filter((r) => r.status === 'OK').length / result.durationSec;
    const status = await client.status();
    return {
      capacityRps,
      goodputRps,
      ratio: goodputRps / capacityRps,
      byStatus: countBy(result.responses),
      eventLoopDelayMs: status.eventLoopDelayMs,
      controllerRssMb: status.memoryRssBytes / 2 ** 20,
    };
  } finally {
    await client.close();
    await cluster.stop();
  }
}

async function fuzz() {
  const cluster = await LocalCluster.start({ numWorkers: 1, modelDir: 'models', simulate: true, preload: [MODEL] });
  const client = await EscapementClient.connect(cluster.clientUrl);
  try {
    await cluster.waitUntilServing(client, [MODEL]);
    const report = await fuzzController(cluster, 500, 7);
    const healthy = (await client.submit(MODEL, inputs, { sloMs: 1000 })).status === 'OK';
    const controllerAlive = (await workerIds(client)).length === 1;
    return { report, crashes: healthy && controllerAlive ? 0 : 1 };
  } finally {
    await client.close();
    await cluster.stop();
  }
}

/** A controller with an admin token: a configure and an HTTP unload without it are both refused. */
async function adminWithoutAuth(): Promise<boolean> {
  const cluster = await LocalCluster.start({
    numWorkers: 1,
    modelDir: 'models',
    simulate: true,
    preload: [MODEL],
    controllerArgs: ['--admin-token', 'bench-admin-token'],
  });
  const client = await EscapementClient.connect(cluster.clientUrl);
  try {
    await cluster.waitUntilServing(client, [MODEL]);
    const configureRefused = await client.configure({ policy: 'fifo' }).then(
      () => false,
      (err: Error) => /admin token/.test(err.message),
    );
    const unload = await fetch(`${cluster.httpUrl}/v2/repository/models/${MODEL}/unload`, { method: 'POST' });
    return configureRefused && unload.status === 403;
  } finally {
    await client.close();
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  progress('faults under load ...');
  const f = await faults();
  progress('3x overload ...');
  const o = await overload();
  progress('fuzzing ...');
  const z = await fuzz();
  progress('admin operations without the admin token ...');
  const adminWithoutAuthRefused = await adminWithoutAuth();
  const fuzzInputs = z.report.numClientInputs + z.report.numWorkerInputs + z.report.numHttpInputs;
  const results = {
    faultsInjected: f.faultsInjected,
    requestsSubmitted: f.submitted,
    requestsAnswered: f.answered,
    requestsLost: f.submitted - f.answered,
    /** Second answers to one request (the client counts them; exactly-once means 0). */
    requestsDuplicated: f.duplicated,
    deadWorkerDetectMs: f.detect.killedWorker,
    frozenWorkerDetectMs: f.detect.frozenWorker,
    recoveryMs: f.recover,
    faultAnswers: f.byStatus,
    overloadGoodputRatio: o.ratio,
    overload: o,
    fuzzInputs,
    fuzzInputsBySurface: { client: z.report.numClientInputs, worker: z.report.numWorkerInputs, http: z.report.numHttpInputs },
    fuzz: z.report,
    crashes: z.crashes,
    /** The controller still served after the worker-port inputs (and every other surface's). */
    hostileWorkerCrashes: z.crashes,
    adminWithoutAuthRefused,
  };
  const table = [
    { metric: 'faults injected (worker kill, worker freeze, controller kill)', value: String(results.faultsInjected) },
    { metric: 'requests submitted / answered / lost', value: `${results.requestsSubmitted} / ${results.requestsAnswered} / ${results.requestsLost}` },
    { metric: 'dead worker detected after (ms)', value: results.deadWorkerDetectMs!.toFixed(0) },
    { metric: 'frozen worker detected after (ms)', value: results.frozenWorkerDetectMs!.toFixed(0) },
    {
      metric: 'recovery: worker restart / unfreeze / controller restart (ms)',
      value: `${f.recover.killedWorker!.toFixed(0)} / ${f.recover.frozenWorker!.toFixed(0)} / ${f.recover.controller!.toFixed(0)}`,
    },
    { metric: 'goodput at 3x overload / capacity', value: `${o.goodputRps.toFixed(0)} / ${o.capacityRps.toFixed(0)} req/s = ${(100 * o.ratio).toFixed(1)} %` },
    { metric: 'controller event-loop delay p99 / max at 3x (ms)', value: `${o.eventLoopDelayMs.p99.toFixed(1)} / ${o.eventLoopDelayMs.max.toFixed(1)}` },
    { metric: 'fuzz inputs tried / crashes', value: `${fuzzInputs} / ${results.crashes}` },
    { metric: 'admin operations without the token refused', value: adminWithoutAuthRefused ? 'yes' : 'NO' },
  ];
  process.stdout.write(`${formatTable(table)}\n`);
  mkdirSync('bench/results', { recursive: true });
  // bench:soak adds its fields to the same file: keep them
  const file = 'bench/results/reliability.json';
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  writeFileSync(file, `${JSON.stringify({ ...previous, ...results }, null, 2)}\n`);
  process.stdout.write(`wrote ${file}\n`);
}

await main();
