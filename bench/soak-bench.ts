/**
 * `npm run bench:soak`: a long run at a steady share of capacity with ramps on, real onnxruntime
 * workers and every fault a deployment meets, one after another (issue #20 part 5):
 * - a worker killed (SIGKILL) and restarted under the same id;
 * - a worker frozen (SIGSTOP) for 3 s, then resumed;
 * - a client that sends 300 requests and disconnects at once;
 * - a link cut: one worker's TCP connection dropped both ways for 3 s (iptables on loopback; skipped
 *   with a note where it cannot be set);
 * - the controller killed (SIGKILL) and restarted on the same ports;
 * - a full log disk: the controller logs to a small tmpfs (or, without the rights to mount one, to
 *   a file that is /dev/full) and must keep serving when it fills.
 * Then 3x and 10x overload for 5 s each. Reported: submitted / answered / lost / duplicated, SLO
 * attainment outside each fault (from its start to 2 s after it is over), every process's RSS
 * every 10 s (growth after the first minute), goodput under overload against the measured
 * capacity, and the controller's event-loop delay. Prints a table, writes bench/results/soak.json,
 * adds its headline fields to bench/results/reliability.json, and plots RSS and SLO attainment
 * over the run with the faults marked (runs/bench-soak/soak.png).
 *
 * SOAK_SECONDS (default 600) sets the length; SOAK_LOAD (default 0.7) the share of the capacity
 * measured at the start.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EscapementClient } from '../client/escapement-client.js';
import { renderPlot } from '../loadgen/latency-plots.js';
import { formatTable } from '../loadgen/latency-summary.js';
import { runOpenLoop } from '../loadgen/open-loop.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { loadDataset } from '../prepare/dataset.js';
import { ErrorCode } from '../shared/error-codes.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { bytesOf, type Tensor } from '../shared/tensor.js';

const MODEL = 'fmnist-resnet';
const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const SOAK_LOAD = Number(process.env.SOAK_LOAD ?? 0.7);
const SLO_MS = 40;
const RSS_EVERY_MS = 10_000;
/** Requests sent within this long after a fault is over still count as the fault's. */
const AFTER_FAULT_MS = 2_000;
const OUT_DIR = 'runs/bench-soak';
const RESULTS_FILE = 'bench/results/soak.json';
const RELIABILITY_FILE = 'bench/results/reliability.json';
/** The log tmpfs: about a third of the run's request log, so it fills part-way. */
const LOG_BYTES_PER_REQUEST = 150;

function progress(line: string): void {
  process.stderr.write(`[bench:soak] ${line}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Inputs from the serving part of the package's dataset, in order. */
function inputsOfDataset(): (i: number) => Tensor[] {
  const entry = loadModelEntry('models', MODEL);
  const ee = entry.manifest.earlyExit!;
  const dataset = loadDataset('datasets/fashion-mnist-test');
  const size = 28 * 28;
  const first = ee.dataset.serveStart;
  const numServe = dataset.numSamples - first;
  const images = dataset.inputs as Float32Array;
  return (i) => {
    const k = first + (i % numServe);
    return [{ name: ee.primaryInput, dtype: 'float32', shape: [1, 1, 28, 28], data: bytesOf(images.slice(k * size, (k + 1) * size)) }];
  };
}

/** A log directory that fills part-way through the run: a small tmpfs, or a log that is /dev/full from the start. */
function fillingLogDir(expectedRequests: number): { dir: string; how: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'soak-logs-'));
  const bytes = Math.max(256 * 1024, Math.round((expectedRequests * LOG_BYTES_PER_REQUEST) / 3));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]).status === 0;
  if (mounted) {
    const cleanup = () => {
      spawnSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    };
    return { dir, how: `a ${(bytes / 2 ** 20).toFixed(1)} MiB tmpfs`, cleanup };
  }
  symlinkSync('/dev/full', join(dir, 'requests.csv'));
  return { dir, how: 'requests.csv is /dev/full (no rights to mount a tmpfs)', cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The local TCP port of a process's connection to `remotePort` on loopback (from `ss`). */
function localPortOf(pid: number, remotePort: number): number | undefined {
  const out = spawnSync('ss', ['-tnpH', 'state', 'established'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of out.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const [local, peer] = line.trim().split(/\s+/).slice(2, 4);
    if (peer?.endsWith(`:${remotePort}`)) return Number(local!.slice(local!.lastIndexOf(':') + 1));
  }
  return undefined;
}

/** Drops both directions of one loopback TCP connection; returns the undo, or a reason it could not. */
function cutLink(localPort: number, remotePort: number): (() => void) | string {
  const rules = [
    ['-p', 'tcp', '-i', 'lo', '--sport', String(localPort), '--dport', String(remotePort), '-j', 'DROP'],
    ['-p', 'tcp', '-i', 'lo', '--sport', String(remotePort), '--dport', String(localPort), '-j', 'DROP'],
  ];
  try {
    for (const rule of rules) execFileSync('iptables', ['-I', 'INPUT', ...rule], { stdio: 'pipe' });
  } catch (err) {
    return `iptables: ${(err as Error).message.split('\n')[0]}`;
  }
  return () => {
    for (const rule of rules) spawnSync('iptables', ['-D', 'INPUT', ...rule]);
  };
}

function rssMb(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

interface Bucket {
  sent: number;
  ok: number;
  missed: number;
  rejected: number;
  errors: number;
  /** No answer from a server: a client-side timeout or a closed client. */
  lost: number;
}

interface Fault {
  kind: string;
  startMs: number;
  endMs: number;
  note?: string;
}

/** Steady open-loop sending at `ratePerSec`, outcomes counted per second of send time. */
class SteadyLoad {
  readonly buckets: Bucket[] = [];
  private sent = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly startMs = performance.now();

  constructor(
    private readonly client: EscapementClient,
    private readonly ratePerSec: number,
    private readonly inputsFor: (i: number) => Tensor[],
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), 5);
  }

  private bucket(atMs: number): Bucket {
    const second = Math.floor((atMs - this.startMs) / 1000);
    while (this.buckets.length <= second) this.buckets.push({ sent: 0, ok: 0, missed: 0, rejected: 0, errors: 0, lost: 0 });
    return this.buckets[second]!;
  }

  private tick(): void {
    const nowMs = performance.now();
    const due = Math.floor(((nowMs - this.startMs) / 1000) * this.ratePerSec);
    for (; this.sent < due; this.sent++) {
      const b = this.bucket(nowMs);
      b.sent++;
      this.inFlight++;
      void this.client.submit(MODEL, this.inputsFor(this.sent), { sloMs: SLO_MS }).then((r) => {
        this.inFlight--;
        if (r.code === ErrorCode.CLIENT_TIMEOUT || r.code === ErrorCode.CLIENT_CLOSED) b.lost++;
        else if (r.status === 'OK') b.ok++;
        else if (r.status === 'DEADLINE_MISSED') b.missed++;
        else if (r.status === 'REJECTED') b.rejected++;
        else b.errors++;
      });
    }
  }

  /** Stops sending; resolves when every request sent has its final answer (or timeout). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.inFlight > 0) await sleep(50);
  }

  get elapsedMs(): number {
    return performance.now() - this.startMs;
  }
}

async function servingWorkers(client: EscapementClient): Promise<number> {
  const status = await client.status();
  return status.workers.filter((w) => w.models.some((m) => m.name === MODEL && m.state === 'loaded')).length;
}

async function until(predicate: () => Promise<boolean>, timeoutMs = 60_000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await predicate().catch(() => false)) return true;
    await sleep(50);
  }
  return false;
}

async function main(): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  const inputsFor = inputsOfDataset();
  progress(`starting a controller (compact ramps) and 2 workers on ${MODEL} ...`);
  let cluster = await LocalCluster.start({ numWorkers: 2, modelDir: 'models', preload: [MODEL], controllerArgs: ['--exit-mode', 'compact'] });
  let client = await EscapementClient.connect(cluster.clientUrl);
  let capacityRps: number;
  try {
    await cluster.waitUntilServing(client, [MODEL], 2, 120_000);
    progress('measuring capacity (a saturating run, SLO 10 s) ...');
    await runOpenLoop(client, { model: MODEL, numRequests: 4000, ratePerSec: 4000, sloMs: 10_000, seed: 3, inputsFor });
    const saturated = await runOpenLoop(client, { model: MODEL, numRequests: 4000, ratePerSec: 4000, sloMs: 10_000, seed: 2, inputsFor });
    capacityRps = saturated.responses.filter((r) => r.status === 'OK').length / saturated.durationSec;
  } finally {
    await client.close();
    await cluster.stop();
  }
  const ratePerSec = Math.round(SOAK_LOAD * capacityRps);
  const logDir = fillingLogDir(ratePerSec * SOAK_SECONDS);
  progress(
    `capacity ${capacityRps.toFixed(0)} req/s; soaking ${SOAK_SECONDS} s at ${ratePerSec} req/s (SLO ${SLO_MS} ms), controller logs on ${logDir.how} ...`,
  );
  cluster = await LocalCluster.start({
    numWorkers: 2,
    modelDir: 'models',
    preload: [MODEL],
    controllerArgs: ['--exit-mode', 'compact', '--log-dir', logDir.dir],
  });
  client = await EscapementClient.connect(cluster.clientUrl);
  const faults: Fault[] = [];
  const rss: { tMs: number; process: string; pid: number; rssMb: number }[] = [];
  const workerPort = Number(cluster.workerUrl.slice(cluster.workerUrl.lastIndexOf(':') + 1));
  let logDiskFullAtMs: number | undefined;
  let eventLoopDelayMs: { p50: number; p99: number; max: number } | undefined;
  let duplicated: number;
  let unknown: number;
  let load: SteadyLoad | undefined;
  try {
    await cluster.waitUntilServing(client, [MODEL], 2, 120_000);
    load = new SteadyLoad(client, ratePerSec, inputsFor);
    load.start();
    const l = load;
    const sampleRss = () => {
      for (const p of cluster.processes()) {
        const mb = rssMb(p.pid);
        if (mb !== undefined) rss.push({ tMs: l.elapsedMs, process: p.name, pid: p.pid, rssMb: mb });
      }
    };
    sampleRss();
    const rssTimer = setInterval(sampleRss, RSS_EVERY_MS);
    const diskTimer = setInterval(() => {
      if (logDiskFullAtMs !== undefined) return;
      void client.status().then(
        (s) => {
          if ((s as { telemetry?: { stoppedBecause: string | null } }).telemetry?.stoppedBecause && logDiskFullAtMs === undefined) {
            logDiskFullAtMs = l.elapsedMs;
            progress(`${(logDiskFullAtMs / 1000).toFixed(0)} s: the log disk is full; the controller goes on`);
          }
        },
        () => {},
      );
    }, 1000);
    const at = async (fraction: number) => {
      const waitMs = fraction * SOAK_SECONDS * 1000 - l.elapsedMs;
      if (waitMs > 0) await sleep(waitMs);
    };
    const fault = async (kind: string, run: () => Promise<string | undefined>) => {
      const startMs = l.elapsedMs;
      progress(`${(startMs / 1000).toFixed(0)} s: ${kind} ...`);
      const note = await run();
      faults.push({ kind, startMs, endMs: l.elapsedMs, ...(note ? { note } : {}) });
      if (note) progress(`  ${note}`);
    };
    const bothServing = () => until(async () => (await servingWorkers(client)) === 2);

    await at(0.1);
    await fault('worker killed and restarted', async () => {
      cluster.signalWorker('worker-1', 'SIGKILL');
      await until(async () => (await servingWorkers(client)) === 1, 10_000);
      await cluster.startWorker('worker-1');
      return (await bothServing()) ? undefined : 'worker-1 did not serve again within 60 s';
    });
    await at(0.25);
    await fault('worker frozen for 3 s', async () => {
      cluster.signalWorker('worker-0', 'SIGSTOP');
      await sleep(3000);
      cluster.signalWorker('worker-0', 'SIGCONT');
      return (await bothServing()) ? undefined : 'worker-0 did not serve again within 60 s';
    });
    await at(0.4);
    await fault('a client disconnects mid-request', async () => {
      const other = await EscapementClient.connect(cluster.clientUrl, { syncClock: false });
      for (let i = 0; i < 300; i++) void other.submit(MODEL, inputsFor(i), { sloMs: SLO_MS });
      await sleep(5);
      await other.close();
      await sleep(500);
      return undefined;
    });
    await at(0.55);
    await fault('link cut for 3 s', async () => {
      const pid = cluster.processes().find((p) => p.name === 'worker-1')?.pid;
      const localPort = pid === undefined ? undefined : localPortOf(pid, workerPort);
      if (localPort === undefined) return 'skipped: no connection of worker-1 to the controller found with ss';
      const undo = cutLink(localPort, workerPort);
      if (typeof undo === 'string') return `skipped: ${undo}`;
      await sleep(3000);
      undo();
      return (await bothServing()) ? undefined : 'worker-1 did not serve again within 60 s after the link came back';
    });
    await at(0.7);
    await fault('controller killed and restarted', async () => {
      await cluster.restartController();
      // The client reconnects by itself (same port); the new controller starts with no state.
      return (await bothServing()) ? undefined : 'the workers did not serve again within 60 s';
    });
    await at(1);
    clearInterval(rssTimer);
    clearInterval(diskTimer);
    sampleRss();
    await load.stop();
    eventLoopDelayMs = (await client.status()).eventLoopDelayMs;
    duplicated = client.answerCounts.duplicate;
    unknown = client.answerCounts.unknown;
  } finally {
    await load?.stop();
  }

  // Overload after the soak, on the same cluster: goodput within the SLO at 3x and 10x capacity.
  const overload: Record<string, { offeredRps: number; goodputRps: number; ratio: number }> = {};
  try {
    for (const factor of [3, 10]) {
      progress(`${factor}x overload for 5 s ...`);
      const offeredRps = Math.round(factor * capacityRps);
      const run = await runOpenLoop(client, { model: MODEL, numRequests: offeredRps * 5, ratePerSec: offeredRps, sloMs: SLO_MS, seed: 40 + factor, inputsFor });
      const goodputRps = run.responses.filter((r) => r.status === 'OK').length / run.durationSec;
      overload[`${factor}x`] = { offeredRps, goodputRps, ratio: goodputRps / capacityRps };
    }
  } finally {
    await client.close();
    await cluster.stop();
    logDir.cleanup();
  }

  // Requests per fault window, and outside them
  const buckets = load!.buckets;
  if (logDiskFullAtMs !== undefined) faults.push({ kind: 'log disk full', startMs: logDiskFullAtMs, endMs: logDiskFullAtMs });
  const inFault = (second: number) => faults.some((f) => second * 1000 + 1000 > f.startMs && second * 1000 < f.endMs + AFTER_FAULT_MS);
  const sum = (bs: Bucket[], key: keyof Bucket) => bs.reduce((s, b) => s + b[key], 0);
  const outside = buckets.filter((_, s) => !inFault(s));
  const submitted = sum(buckets, 'sent');
  const lost = sum(buckets, 'lost');
  const sloOutsideFaults = sum(outside, 'ok') / Math.max(1, sum(outside, 'sent'));
  const perFault = faults.map((f) => {
    const bs = buckets.filter((_, s) => s * 1000 + 1000 > f.startMs && s * 1000 < f.endMs + AFTER_FAULT_MS);
    return {
      ...f,
      seconds: (f.endMs - f.startMs) / 1000,
      sent: sum(bs, 'sent'),
      ok: sum(bs, 'ok'),
      lost: sum(bs, 'lost'),
      missed: sum(bs, 'missed'),
      rejected: sum(bs, 'rejected'),
    };
  });
  // RSS growth: per process (pid), from its first sample 60 s or more after it started to its last
  const growth: Record<string, number> = {};
  for (const pid of new Set(rss.map((r) => r.pid))) {
    const series = rss.filter((r) => r.pid === pid);
    const settled = series.filter((r) => r.tMs >= series[0]!.tMs + 60_000);
    if (settled.length < 2) continue;
    growth[`${series[0]!.process} (pid ${pid})`] = (100 * (settled.at(-1)!.rssMb - settled[0]!.rssMb)) / settled[0]!.rssMb;
  }
  const rssGrowthPct = Math.max(...Object.values(growth), 0);
  const results = {
    model: MODEL,
    exitMode: 'compact',
    soakSeconds: SOAK_SECONDS,
    capacityRps,
    ratePerSec,
    sloMs: SLO_MS,
    submitted,
    answered: submitted - lost,
    requestsLost: lost,
    requestsDuplicated: duplicated,
    unknownAnswers: unknown,
    byOutcome: { ok: sum(buckets, 'ok'), missed: sum(buckets, 'missed'), rejected: sum(buckets, 'rejected'), errors: sum(buckets, 'errors'), lost },
    sloOutsideFaults,
    faultKinds: faults.map((f) => f.kind),
    faults: perFault,
    logDisk: logDir.how,
    rssGrowthPct,
    rssGrowthPctByProcess: growth,
    rss,
    overload,
    overloadGoodputRatio3x: overload['3x']?.ratio,
    overloadGoodputRatio10x: overload['10x']?.ratio,
    eventLoopDelayMs,
    perSecond: buckets,
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  const previous = existsSync(RELIABILITY_FILE) ? (JSON.parse(readFileSync(RELIABILITY_FILE, 'utf8')) as Record<string, unknown>) : {};
  const { soakSeconds, faultKinds, requestsDuplicated, overloadGoodputRatio10x } = results;
  writeFileSync(
    RELIABILITY_FILE,
    JSON.stringify(
      {
        ...previous,
        soakSeconds,
        rssGrowthPct,
        faultKinds,
        requestsDuplicated,
        overloadGoodputRatio10x,
        soak: {
          submitted,
          answered: submitted - lost,
          requestsLost: lost,
          sloOutsideFaults,
          eventLoopDelayMs,
          overloadGoodputRatio3x: results.overloadGoodputRatio3x,
        },
      },
      null,
      2,
    ) + '\n',
  );

  process.stdout.write(
    `\n${MODEL}, compact ramps, ${SOAK_SECONDS} s at ${ratePerSec} req/s (${Math.round(100 * SOAK_LOAD)} % of ${capacityRps.toFixed(0)} req/s measured), SLO ${SLO_MS} ms:\n`,
  );
  process.stdout.write(
    formatTable(
      perFault.map((f) => ({
        fault: f.kind,
        'at s': (f.startMs / 1000).toFixed(0),
        'lasted s': f.seconds.toFixed(1),
        sent: f.sent,
        ok: f.ok,
        missed: f.missed,
        rejected: f.rejected,
        lost: f.lost,
        note: f.note ?? '',
      })),
    ) + '\n',
  );
  process.stdout.write(
    `${formatTable([
      { metric: 'submitted / answered / lost / duplicated', value: `${submitted} / ${submitted - lost} / ${lost} / ${duplicated}` },
      { metric: 'SLO attainment outside faults (+2 s)', value: `${(100 * sloOutsideFaults).toFixed(2)} %` },
      { metric: 'RSS growth after the first minute (worst process)', value: `${rssGrowthPct.toFixed(1)} %` },
      { metric: 'goodput at 3x / 10x overload vs capacity', value: `${overload['3x']!.ratio.toFixed(2)} / ${overload['10x']!.ratio.toFixed(2)}` },
      { metric: 'controller event-loop delay p99 / max', value: `${eventLoopDelayMs?.p99.toFixed(1)} / ${eventLoopDelayMs?.max.toFixed(1)} ms` },
    ])}\n`,
  );

  // Plot: RSS per process, and SLO attainment per 10 s, with the faults marked
  const perTen = [];
  for (let s = 0; s < buckets.length; s += 10) {
    const bs = buckets.slice(s, s + 10);
    perTen.push({ tS: s, sloPct: (100 * sum(bs, 'ok')) / Math.max(1, sum(bs, 'sent')) });
  }
  const marks = faults.map((f) => ({ tS: f.startMs / 1000, fault: f.kind }));
  const layerOf = (title: string, values: unknown[], y: string, color?: string, detail?: string) => ({
    width: 640,
    height: 180,
    title,
    layer: [
      {
        data: { values },
        mark: { type: 'line' as const },
        encoding: {
          x: { field: 'tS', type: 'quantitative' as const, title: 'seconds into the run' },
          y: { field: y, type: 'quantitative' as const, title: null },
          ...(color ? { color: { field: color, type: 'nominal' as const, title: null } } : {}),
          ...(detail ? { detail: { field: detail, type: 'nominal' as const } } : {}),
        },
      },
      {
        data: { values: marks },
        mark: { type: 'rule' as const, strokeDash: [4, 4], color: 'gray' },
        encoding: { x: { field: 'tS', type: 'quantitative' as const } },
      },
    ],
  });
  const plot = await renderPlot(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: `soak: ${MODEL}, compact ramps, ${ratePerSec} req/s; dashed lines: faults`,
      vconcat: [
        layerOf(
          'resident memory per process (MB)',
          rss.map((r) => ({ tS: r.tMs / 1000, rssMb: r.rssMb, process: r.process, pid: r.pid })),
          'rssMb',
          'process',
          'pid',
        ),
        layerOf('answered OK within the SLO, per 10 s (%)', perTen, 'sloPct'),
      ],
    } as never,
    join(OUT_DIR, 'soak'),
  );
  process.stdout.write(`wrote ${RESULTS_FILE}, the soak fields of ${RELIABILITY_FILE}, and ${plot.pngPath}\n`);
}

await main();
