/**
 * `npm run bench:core`: the serving core's overhead, predictability, planning throughput and
 * SLO attainment. Prints a table and writes bench/results/core.json.
 *
 * 1. Overhead: end-to-end latency at low load (client-measured, batch 1) against the raw
 *    `session.run` time of batch 1 in this process, same run, same session options; beside it
 *    the transport floor (two ZeroMQ round trips + one thread round trip, measured alone, back to
 *    back and 10 ms apart as the low-load requests are, so idle wake-ups are counted) and where
 *    the time goes (from the controller's action log).
 * 2. Predictability: |actual − predicted| INFER duration (% of predicted) and start lateness
 *    (actual − planned start), from the controller's action log; per model quiet, with a CPU hog
 *    on one core (a busy host), and busy with the inference threads at the default priority
 *    (--nice 0; workers raise it to -10 by default). Beside each, where the error comes from: the
 *    same models' runs alone (run-jitter.ts: the floor an oracle knowing each batch size's median
 *    run would have), the served runs against their own medians, and the hop around each run;
 *    and quiet with one worker, which leaves a core free of runs for everything else.
 * 3. Controller scale: requests/s planned by the pure core with 100 simulated workers and
 *    1,000 models (virtual clock, one core).
 * 4. SLO attainment and p50/p99/p99.9 at 50 % and 90 % of the measured capacity, 2 real workers.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { EscapementClient } from '../client/escapement-client.js';
import { randomInputs } from '../client/input-tensors.js';
import { formatTable, percentilesMs, summarize } from '../loadgen/latency-summary.js';
import { runOpenLoop } from '../loadgen/open-loop.js';
import { waitUntilNs } from '../loadgen/send-pacing.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { monotonicNowNs } from '../shared/clock.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { sessionOptions } from '../onnx/session-options.js';
import { measurePlanThroughput } from './plan-throughput.js';
import { inferErrors, measurePredictability, percentile, readActionLog } from './predictability.js';
import { measureRunJitter } from './run-jitter.js';
import { threadRoundTripP50Ms, zmqRoundTripP50Ms } from './transport-floor.js';

const MODEL = 'mnist-cnn';
const MODEL_DIR = 'models';
/** The small image model and the real-size one, measured side by side (bench/predictability.ts). */
const PREDICTABILITY_MODELS = ['fmnist-resnet', 'fmnist-resnet-112'];
const PREDICTABILITY_SECONDS = Number(process.env.CORE_PREDICTABILITY_SECONDS ?? 10);
const SLO_MS = 25;
/** Mean gap between requests in the low-load (overhead) run: 100 req/s. */
const LOW_LOAD_GAP_MS = 10;

function progress(line: string): void {
  process.stderr.write(`[bench:core] ${line}\n`);
}

async function rawRunP50Ms(numRuns: number): Promise<number> {
  const entry = loadModelEntry(MODEL_DIR, MODEL);
  const session = await ort.InferenceSession.create(entry.onnxPath, sessionOptions({ device: 'cpu', intraOpNumThreads: 1 }));
  const input = randomInputs(entry.manifest, 1)[0]!;
  const feeds = { [input.name]: new ort.Tensor('float32', new Float32Array(input.data.buffer, input.data.byteOffset, 784), input.shape) };
  for (let i = 0; i < 20; i++) await session.run(feeds);
  const samples: number[] = [];
  for (let i = 0; i < numRuns; i++) {
    const t0 = monotonicNowNs();
    await session.run(feeds);
    samples.push((monotonicNowNs() - t0) / 1e6);
    await new Promise((r) => setTimeout(r, 2)); // idle gaps, as at low load
  }
  await session.release();
  return percentilesMs(samples).p50Ms;
}

/**
 * The load generator's own cost: CPU time over wall time while pacing 100 sends 1.2 ms apart
 * (loadgen/send-pacing.ts sleeps until just before each send; the polling loop it replaced used
 * ~80 % of the wall time, CPU the workers need on a shared machine).
 */
async function pacingCpuShare(): Promise<number> {
  const cpuBefore = process.cpuUsage();
  const startNs = monotonicNowNs();
  for (let i = 1; i <= 100; i++) await waitUntilNs(startNs + i * 1_200_000);
  const wallUs = (monotonicNowNs() - startNs) / 1e3;
  const cpu = process.cpuUsage(cpuBefore);
  return (cpu.user + cpu.system) / wallUs;
}

async function main(): Promise<void> {
  const manifest = loadModelEntry(MODEL_DIR, MODEL).manifest;
  const inputPool = Array.from({ length: 64 }, (_, i) => randomInputs(manifest, i + 1));
  const inputsFor = (i: number) => inputPool[i % inputPool.length]!;

  progress('controller scale: 100 simulated workers, 1,000 models (warm-up + 3 runs, median) ...');
  const scaleOptions = { numWorkers: 100, numModels: 1000, arrivalRatePerSec: 100_000, virtualSeconds: 1, sloMs: 100 };
  measurePlanThroughput(scaleOptions); // warm-up: the first run also pays for JIT compilation
  const scaleRuns = [0, 1, 2].map(() => measurePlanThroughput(scaleOptions)).sort((a, b) => a.planRequestsPerSec - b.planRequestsPerSec);
  const scale = scaleRuns[1]!;

  progress('transport floor: ZeroMQ and worker-thread round trips ...');
  const zmqRttMs = await zmqRoundTripP50Ms(2000);
  const threadRttMs = await threadRoundTripP50Ms(2000);
  // The same hops 10 ms apart, as the low-load run's requests are (100 req/s).
  const zmqIdleRttMs = await zmqRoundTripP50Ms(300, 5932, LOW_LOAD_GAP_MS);
  const threadIdleRttMs = await threadRoundTripP50Ms(300, LOW_LOAD_GAP_MS);
  const sendPacingCpuShare = await pacingCpuShare();

  const logDir = mkdtempSync(join(tmpdir(), 'escapement-bench-'));
  progress('starting a controller and 2 onnxruntime workers ...');
  const cluster = await LocalCluster.start({ numWorkers: 2, modelDir: MODEL_DIR, preload: [MODEL], controllerArgs: ['--log-dir', logDir] });
  const client = await EscapementClient.connect(cluster.clientUrl);
  let results: Record<string, unknown>;
  try {
    await cluster.waitUntilServing(client, [MODEL]);

    progress('overhead at low load ...');
    const rawBeforeMs = await rawRunP50Ms(200);
    const low = await runOpenLoop(client, { model: MODEL, numRequests: 300, ratePerSec: 1000 / LOW_LOAD_GAP_MS, sloMs: 100, seed: 1, inputsFor });
    const rawAfterMs = await rawRunP50Ms(200);
    const rawMs = (rawBeforeMs + rawAfterMs) / 2;
    const lowSummary = summarize(low.responses);

    progress('capacity (saturating open loop, generous SLO) ...');
    const saturate = await runOpenLoop(client, { model: MODEL, numRequests: 24_000, ratePerSec: 20_000, sloMs: 5000, seed: 2, inputsFor });
    const numOk = saturate.responses.filter((r) => r.status === 'OK').length;
    const capacityRps = numOk / saturate.durationSec;

    const atLoad = async (fraction: number) => {
      const ratePerSec = capacityRps * fraction;
      progress(`${Math.round(fraction * 100)} % of capacity: ${ratePerSec.toFixed(0)} req/s, SLO ${SLO_MS} ms ...`);
      const run = await runOpenLoop(client, { model: MODEL, numRequests: Math.round(ratePerSec * 3), ratePerSec, sloMs: SLO_MS, seed: 3, inputsFor });
      return { summary: summarize(run.responses), scheduleLagP99Ms: percentilesMs(run.scheduleLagMs).p99Ms };
    };
    const at50 = await atLoad(0.5);
    const at90 = await atLoad(0.9);

    await new Promise((r) => setTimeout(r, 300)); // let the controller flush its logs
    const infers = readActionLog(join(logDir, 'actions.csv')).filter((r) => r.action_type === 'infer' && r.code === '0');
    // Where the time of a batch-1 INFER goes at low load (the first 300 INFERs are the low-load run).
    const lowInfers = infers.slice(20, 300).filter((r) => r.batch_size === '1' && r.worker_received_ms !== '');
    const stage = (f: (r: Record<string, string>) => number) => percentile(lowInfers.map(f), 0.5);
    const breakdown = {
      workerRunMs: stage((r) => Number(r.actual_duration_ms)),
      workerToControllerMs: stage((r) => Number(r.t_ms) - Number(r.worker_sent_ms)),
      receivedToStartMs: stage((r) => Number(r.actual_start_ms) - Number(r.worker_received_ms)),
    };
    const errors = inferErrors(infers);

    const core = {
      model: MODEL,
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      rawRunP50Ms: rawMs,
      lowLoadE2eP50Ms: lowSummary.p50Ms,
      overheadP50Ms: lowSummary.p50Ms - rawMs,
      /** Two ZeroMQ round trips (client<->controller, controller<->worker) and one thread round trip, measured alone. */
      transportFloorMs: 2 * zmqRttMs + threadRttMs,
      zmqRoundTripP50Ms: zmqRttMs,
      threadRoundTripP50Ms: threadRttMs,
      /** The same floor with the hops 10 ms apart (the low-load run's spacing): wake-ups included. */
      idleTransportFloorMs: 2 * zmqIdleRttMs + threadIdleRttMs,
      zmqIdleRoundTripP50Ms: zmqIdleRttMs,
      threadIdleRoundTripP50Ms: threadIdleRttMs,
      /** CPU over wall time of the client pacing sends 1.2 ms apart (it sleeps rather than polls). */
      sendPacingCpuShare,
      /** Low-load batch-1 INFERs at p50: the worker's run (thread hop + session.run), result hop, wait before start. */
      lowLoadBreakdownMs: breakdown,
      /** Controller arrival to answer, without the client's two hops. */
      lowLoadServerP50Ms: percentilesMs(low.responses.filter((r) => r.serverLatencyMs !== undefined).map((r) => r.serverLatencyMs!)).p50Ms,
      ...errors,
      planRequestsPerSec: scale.planRequestsPerSec,
      planScale: { numWorkers: 100, numModels: 1000, ...scale },
      capacityRps,
      sloMs: SLO_MS,
      sloAttainmentAt50Pct: at50.summary.sloAttainment,
      sloAttainmentAt90Pct: at90.summary.sloAttainment,
      at50Pct: at50,
      at90Pct: at90,
    };

    results = core;
    const table = [
      { metric: 'raw session.run p50, batch 1', value: rawMs.toFixed(3), unit: 'ms', goal: '' },
      { metric: 'end-to-end p50 at low load', value: lowSummary.p50Ms.toFixed(3), unit: 'ms', goal: '' },
      { metric: 'overhead p50', value: core.overheadP50Ms.toFixed(3), unit: 'ms', goal: '<= 0.5' },
      {
        metric: 'transport floor: 2 ZeroMQ RTT + 1 thread RTT',
        value: `${core.transportFloorMs.toFixed(3)} (${zmqRttMs.toFixed(3)} x 2 + ${threadRttMs.toFixed(3)})`,
        unit: 'ms',
        goal: '',
      },
      {
        metric: 'the same, hops 10 ms apart (idle wake-ups, as at low load)',
        value: `${core.idleTransportFloorMs.toFixed(3)} (${zmqIdleRttMs.toFixed(3)} x 2 + ${threadIdleRttMs.toFixed(3)})`,
        unit: 'ms',
        goal: '',
      },
      { metric: 'client send pacing: CPU share of wall time, sends 1.2 ms apart', value: sendPacingCpuShare.toFixed(2), unit: '', goal: '< 0.5' },
      {
        metric: 'worker run (thread hop + session.run) / result hop, p50',
        value: `${breakdown.workerRunMs.toFixed(3)} / ${breakdown.workerToControllerMs.toFixed(3)}`,
        unit: 'ms',
        goal: '',
      },
      { metric: 'controller arrival-to-answer p50 at low load', value: core.lowLoadServerP50Ms.toFixed(3), unit: 'ms', goal: '' },
      {
        metric: 'INFER prediction error p50 / p99',
        value: `${core.predictionErrorP50Pct.toFixed(1)} / ${core.predictionErrorP99Pct.toFixed(1)} % (${core.predictionErrorP50Ms.toFixed(3)} / ${core.predictionErrorP99Ms.toFixed(3)} ms)`,
        unit: '',
        goal: '',
      },
      { metric: 'start lateness p50 / p99', value: `${core.startLatenessP50Ms.toFixed(3)} / ${core.startLatenessP99Ms.toFixed(3)}`, unit: 'ms', goal: '' },
      { metric: 'planned by the core (100 workers, 1,000 models, median of 3)', value: core.planRequestsPerSec.toFixed(0), unit: 'req/s', goal: '>= 100000' },
      { metric: 'capacity, 2 workers', value: capacityRps.toFixed(0), unit: 'req/s', goal: '' },
      {
        metric: `SLO attainment at 50 % (p50 / p99 / p99.9 ms)`,
        value: `${(100 * at50.summary.sloAttainment).toFixed(2)} % (${at50.summary.p50Ms.toFixed(2)} / ${at50.summary.p99Ms.toFixed(2)} / ${at50.summary.p999Ms.toFixed(2)})`,
        unit: '',
        goal: '',
      },
      {
        metric: `SLO attainment at 90 % (p50 / p99 / p99.9 ms)`,
        value: `${(100 * at90.summary.sloAttainment).toFixed(2)} % (${at90.summary.p50Ms.toFixed(2)} / ${at90.summary.p99Ms.toFixed(2)} / ${at90.summary.p999Ms.toFixed(2)})`,
        unit: '',
        goal: '',
      },
    ];
    process.stdout.write(`${formatTable(table)}\n`);
  } finally {
    await client.close();
    await cluster.stop();
    rmSync(logDir, { recursive: true, force: true });
  }

  // Predictability where compute is small against the serving path (fmnist-resnet, ~1.3 ms a
  // batch-1 run) and where it dominates (fmnist-resnet-112, ~20 ms), each at 70 % of its capacity:
  // quiet, on a busy host (a CPU hog spinning on one core during the measured run), and busy with
  // the workers' inference threads left at the default niceness (--nice 0) to show what -10 buys.
  const byModel: Awaited<ReturnType<typeof measurePredictability>>[] = [];
  for (const model of PREDICTABILITY_MODELS) {
    // The last variant leaves a core free of runs (one worker on this 2-core host): what the
    // predictions are when the controller, the client and the host need not preempt a run.
    // The fifth leaves the two inference threads unpinned, as before each worker got a CPU of its
    // own (docs/benchmarks.md, "Two runs on one core"), side by side with the first.
    for (const variant of [{}, { busy: true }, { busy: true, workerArgs: ['--nice', '0'] }, { numWorkers: 1 }, { unpinned: true }]) {
      byModel.push(await measurePredictability({ model, loadFraction: 0.7, seconds: PREDICTABILITY_SECONDS, progress, ...variant }));
    }
  }
  // The floor under those errors: each model's runs alone at the workers' niceness, quiet and
  // busy, against the median run of their batch size (run-jitter.ts).
  const floors = new Map(PREDICTABILITY_MODELS.map((model) => [model, { quiet: measureRunJitter(model, false), busy: measureRunJitter(model, true) }]));
  const section = (model: string) => {
    const [quiet, busy, busyNiceZero, spareCore, unpinned] = byModel.filter((m) => m.model === model);
    const floor = floors.get(model)!;
    return {
      ...quiet!,
      predictionErrorP99PctSpareCore: spareCore!.predictionErrorP99Pct,
      startLatenessP99MsSpareCore: spareCore!.startLatenessP99Ms,
      spareCore,
      predictionErrorP99PctUnpinned: unpinned!.predictionErrorP99Pct,
      startLatenessP99MsUnpinned: unpinned!.startLatenessP99Ms,
      unpinned,
      runJitterFloorP99Pct: floor.quiet.oracleErrorP99Pct,
      runJitterFloorP99PctBusy: floor.busy.oracleErrorP99Pct,
      runJitterFloor: floor,
      sloAttainmentAt70Pct: quiet!.sloAttainment,
      predictionErrorP99PctBusy: busy!.predictionErrorP99Pct,
      startLatenessP99MsBusy: busy!.startLatenessP99Ms,
      sloAttainmentAt70PctBusy: busy!.sloAttainment,
      busy,
      busyNiceZero,
    };
  };
  results.fmnistResnet = section('fmnist-resnet');
  results.realSize = section('fmnist-resnet-112');
  process.stdout.write(
    `\n${formatTable(
      byModel.map((m) => ({
        model: m.model,
        host: `${m.busy ? (m.workerArgs.length > 0 ? `busy, ${m.workerArgs.join(' ')}` : 'busy') : 'quiet'}${m.numWorkers === 1 ? ', 1 worker' : ''}${m.unpinned ? ', unpinned' : ''}`,
        'slo ms': m.sloMs,
        'capacity rps': Math.round(m.capacityRps),
        'slo % at 70 %': (100 * m.sloAttainment).toFixed(2),
        'p50 / p99 ms': `${m.p50Ms.toFixed(1)} / ${m.p99Ms.toFixed(1)}`,
        'pred. error p50 / p99 %': `${m.predictionErrorP50Pct.toFixed(1)} / ${m.predictionErrorP99Pct.toFixed(1)}`,
        'pred. error p99 ms': m.predictionErrorP99Ms.toFixed(2),
        'lateness p50 / p99 ms': `${m.startLatenessP50Ms.toFixed(2)} / ${m.startLatenessP99Ms.toFixed(2)}`,
        'runs alone / served: jitter p99 %': `${(m.busy ? floors.get(m.model)!.busy : floors.get(m.model)!.quiet).oracleErrorP99Pct.toFixed(1)} / ${m.servedRunJitterP99Pct.toFixed(1)}`,
        'hop p50 / p99 ms': `${m.hopP50Ms.toFixed(2)} / ${m.hopP99Ms.toFixed(2)}`,
      })),
    )}\n`,
  );
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/core.json', `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write('wrote bench/results/core.json\n');
}

await main();
