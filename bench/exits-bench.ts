/**
 * `npm run bench:exits`: bundled early-exit packages served by 2 real workers, vanilla vs
 * ramps-release vs ramps-compact, each with the same arrival sequence and the same inputs (the
 * serving part of the dataset, in order). Two workloads: the CNN (fmnist-resnet on Fashion-MNIST,
 * top-level fields of the JSON) and the text classifier (spam-transformer on SpamAssassin, tokenized
 * on the client, under `text`). Per variant: the maximum sustainable throughput (a saturating open
 * loop with a generous SLO), then p50/p90/p99 latency at one offered load for all variants
 * (EXITS_LOAD × vanilla's maximum, default 0.6), agreement with the full model, ground-truth
 * accuracy, and the exit fraction per ramp. Prints a table per workload and writes
 * bench/results/exits.json. EXITS_WORKLOADS=cnn or =text runs one of them; EXITS_LOAD_NICENESS and EXITS_SLO_PHASE_MS (below); EXITS_LOG_DIR=DIR has
 * each variant's controller write its logs (requests.csv, actions.csv, thresholds.csv) under
 * DIR/<model>-<variant>/ for a look at what happened in a phase.
 *
 * Ramp thresholds start at the package's initial ones (chosen on the validation split for ≥ 99 %
 * agreement) and are tuned online as in service.
 *
 * For the fixed-shape workload it also measures the chain's own cost (the same batch of 16 run
 * whole and as the chain, in this process, before any cluster runs) and from it and the exits
 * seen, the compute-bound throughput ceilings of both modes (bench/exit-ceiling.ts): a ratio
 * below its ceiling is the serving path's cost, a ceiling below the goal is the ramps' own limit.
 * It then repeats the saturation with one worker (`oneWorker` in the JSON): on two cores, that
 * worker's inference thread has a core to itself, which shows how much of the gap to the ceiling
 * is the co-location of two inference threads with the controller, the client and the messages.
 * Last, it measures the two-worker throughput ratios again with vanilla, release and compact
 * alternated in rounds (`alternated` in the JSON, and `throughputRatioAlternated` per mode), so
 * that the host's drift between minutes-apart runs does not move them; EXITS_ALTERNATED_ROUNDS
 * (default 3, 0 skips it).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { EscapementClient, type InferResponse } from '../client/escapement-client.js';
import { formatTable, percentilesMs } from '../loadgen/latency-summary.js';
import { runOpenLoop } from '../loadgen/open-loop.js';
import { packageTokenizer, textInputs } from '../client/text-inputs.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { loadDataset } from '../prepare/dataset.js';
import { datasetFeeds } from '../prepare/dataset-feeds.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { asFloat32, bytesOf, type Tensor } from '../shared/tensor.js';
import { profiledCapacityRps } from '../loadgen/profiled-capacity.js';
import { sloFor } from '../loadgen/slo-rule.js';
import { sloForHost } from '../loadgen/host-speed.js';
import { ThreadExecutor } from '../worker/thread-executor.js';
import { alternatedRatios, type AlternatedRatio, type Round } from './alternated-ratios.js';
import { Device } from '../worker/device.js';
import { inferOnDevice, loadOnDevice, measureChainCost } from './chain-cost.js';
import { exitCeilings } from './exit-ceiling.js';
import { startCpuMeter, type CpuCores } from './process-cpu.js';

/**
 * `release` runs a batch on the fused model when requests queue behind it (the default);
 * `release-chain` is release through the chain for every batch (`--no-fused-release`), as before.
 */
const VARIANTS = ['off', 'release', 'compact', 'release-chain'] as const;
type Variant = (typeof VARIANTS)[number];
const NAMES: Record<Variant, string> = { off: 'vanilla', release: 'release', compact: 'compact', 'release-chain': 'releaseChain' };
const LOG_DIR = process.env.EXITS_LOG_DIR;
/**
 * EXITS_LOAD_NICENESS=N: the load generator sends with its threads at niceness N
 * (loadgen/open-loop.ts), e.g. -10, the serving processes' default. At the default niceness it
 * falls behind its schedule under load (send lag p99 ~10 ms at 70 %) and sends what it owes as
 * bursts; at -10 it keeps the schedule (p99 3.4-5.6 ms) but takes its CPU from the serving
 * processes on a 2-core host. Off by default so runs stay comparable with the earlier ones. Each
 * 70 % run reports its send lag p99 (`scheduleLagP99Ms`).
 */
const LOAD_GENERATOR_NICENESS = process.env.EXITS_LOAD_NICENESS === undefined ? undefined : Number(process.env.EXITS_LOAD_NICENESS);
const controllerArgsOf = (variant: Variant, model: string): string[] => [
  ...(variant === 'release-chain' ? ['--exit-mode', 'release', '--no-fused-release'] : ['--exit-mode', variant]),
  ...(LOG_DIR ? ['--log-dir', `${LOG_DIR}/${model}-${NAMES[variant]}`] : []),
];
/** Offered load of the latency phase as a fraction of vanilla's measured maximum throughput. */
const LOAD_FRACTION = Number(process.env.EXITS_LOAD ?? 0.6);
const LATENCY_SECONDS = Number(process.env.EXITS_SECONDS ?? 6);
const WORKLOADS = (process.env.EXITS_WORKLOADS ?? 'cnn,real,text').split(',');
const SLO_MS = 100;
/** The real-size workload is measured as issue #22 states its goals: at 70 % of vanilla's capacity, under the SLO rule. */
const REAL_SIZE_MODEL = 'fmnist-resnet-112';
const RESULTS_FILE = 'bench/results/exits.json';
const REAL_SIZE_LOAD = 0.7;
const REAL_SIZE_SECONDS = 10;
/** A real-size model's LOAD profiles 16 batch sizes at up to ~0.3 s a run: allow it minutes. */
const SERVING_TIMEOUT_MS = 240_000;

/** How one workload is measured: its latency phase, and the saturating runs sized to its capacity. */
interface WorkloadPlan {
  loadFraction: number;
  latencySeconds: number;
  sloMs: number;
  /** Requests and offered rate of each saturating run (unmeasured settling run, then the measured one). */
  saturation: { numRequests: number; ratePerSec: number };
  /** Timed runs of the in-process chain-cost measurement. */
  chainCostRuns: number;
  /**
   * Issue #16's predictability phases, after the latency phase: `runs` runs at `loadFraction` of
   * vanilla's capacity under `sloMs`, then one of bursty arrivals (gamma gaps, CV `burstyCv`) at
   * `burstyLoad` of it.
   */
  sloPhases?: { sloMs: number; loadFraction: number; seconds: number; runs: number; burstyLoad: number; burstyCv: number };
}

const SMALL_MODEL_PLAN: WorkloadPlan = {
  loadFraction: LOAD_FRACTION,
  latencySeconds: LATENCY_SECONDS,
  sloMs: SLO_MS,
  saturation: { numRequests: 4000, ratePerSec: 4000 },
  chainCostRuns: 30,
};
/** Issue #16's SLO for the 70 % and bursty phases of fmnist-resnet. */
const SLO_PHASE_MS = 40;
/**
 * EXITS_SLO_PHASE_MS: the SLO of those phases, in ms, or `host` for issue #16's 40 ms stretched by
 * as much as this host runs fmnist-resnet slower than its package profile (loadgen/host-speed.ts),
 * rounded up to 10 ms. On a host 2.6x slower a batch of 16 takes 43 ms and cannot meet 40 ms at
 * all, so the 70 % phases measure a different planner problem from the one the goal was set on;
 * `host` keeps the SLO's headroom over a run the same. Default 40 ms, the issue's.
 */
async function sloPhaseMs(): Promise<number> {
  return sloForHost(SLO_PHASE_MS, process.env.EXITS_SLO_PHASE_MS, 'models', 'fmnist-resnet');
}

async function fmnistPlan(): Promise<WorkloadPlan> {
  const sloMs = await sloPhaseMs();
  if (sloMs !== SLO_PHASE_MS)
    progress(`fmnist-resnet: the 70 % and bursty phases run at SLO ${sloMs} ms (EXITS_SLO_PHASE_MS), not the issue's ${SLO_PHASE_MS} ms`);
  return {
    ...SMALL_MODEL_PLAN,
    sloPhases: { sloMs, loadFraction: 0.7, seconds: Number(process.env.EXITS_SLO_SECONDS ?? 8), runs: 3, burstyLoad: 0.5, burstyCv: 10 },
  };
}

/**
 * Two workers' capacity from the package's profile (prepare measured it): the largest batch, back
 * to back. Sizes saturating runs to ~8 s and 3x that rate, whatever the model's size.
 */
function realSizePlan(model: string): WorkloadPlan {
  const entry = loadModelEntry('models', model);
  const capacityRps = profiledCapacityRps('models', model);
  return {
    loadFraction: REAL_SIZE_LOAD,
    latencySeconds: REAL_SIZE_SECONDS,
    sloMs: sloFor(entry, undefined, undefined, 40),
    saturation: { numRequests: Math.round(capacityRps * 8), ratePerSec: Math.round(capacityRps * 3) },
    chainCostRuns: 8,
  };
}

/** Batch-1 run time of the whole model on one onnxruntime thread, in this process (p50 of 30). */
async function batch1RunMs(model: string, inputs: Tensor[]): Promise<number> {
  const device = new Device(new ThreadExecutor({ device: 'cpu', intraOpNumThreads: 1 }), { modelDir: 'models', memoryBudgetBytes: 2 ** 40 });
  try {
    const entry = loadModelEntry('models', model);
    await loadOnDevice(device, entry, [1]);
    const samples: number[] = [];
    for (let run = -5; run < 30; run++) {
      const ms = await inferOnDevice(
        device,
        entry,
        inputs.map((t) => ({ ...t, data: new Uint8Array(t.data) })),
        1,
      );
      if (run >= 0) samples.push(ms);
    }
    return percentilesMs(samples).p50Ms;
  } finally {
    await device.close();
  }
}

function progress(line: string): void {
  process.stderr.write(`[bench:exits] ${line}\n`);
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** A model package with its serving data: inputs, labels and the full model's own predictions. */
interface Workload {
  model: string;
  inputsFor: (i: number) => Tensor[];
  labelOf: (i: number) => number;
  fullPrediction: (i: number) => number;
}

/** The serving part of the package's dataset (after the bootstrap part), in order. */
async function loadWorkload(model: string, datasetPath: string): Promise<Workload> {
  const entry = loadModelEntry('models', model);
  const ee = entry.manifest.earlyExit!;
  const tokenizer = packageTokenizer(entry);
  const dataset = loadDataset(datasetPath, tokenizer ? { tokenizer } : {});
  const first = ee.dataset.serveStart;
  const numServe = dataset.numSamples - first;
  const sampleShape = tokenizer ? dataset.sampleShape : entry.manifest.inputs[0]!.shape.slice(1);
  const size = sampleShape.reduce((a, b) => a * b, 1);
  const inputsFor = (i: number): Tensor[] => {
    const k = first + (i % numServe);
    if (tokenizer) return textInputs(tokenizer, dataset.text!.texts[k]!);
    return [
      { name: ee.primaryInput, dtype: 'float32', shape: [1, ...sampleShape], data: bytesOf((dataset.inputs as Float32Array).slice(k * size, (k + 1) * size)) },
    ];
  };
  progress(`${model}: the full model's predictions on the serving data ...`);
  const session = await ort.InferenceSession.create(entry.onnxPath, { logSeverityLevel: 3 });
  const predictions = new Int32Array(numServe);
  for (let b = 0; b < numServe; b += 256) {
    const m = Math.min(256, numServe - b);
    const out = (await session.run(datasetFeeds({ ...dataset, sampleShape }, ee.primaryInput, first + b, m)))[ee.finalOutput]!;
    const k = out.dims[1]!;
    for (let r = 0; r < m; r++) predictions[b + r] = argmax((out.data as Float32Array).subarray(r * k, (r + 1) * k));
  }
  await session.release();
  return { model, inputsFor, labelOf: (i) => dataset.labels![first + (i % numServe)]!, fullPrediction: (i) => predictions[i % numServe]! };
}

/**
 * Maximum sustainable throughput in the steady state: a warm-up, one unmeasured saturating run,
 * then the measured one. In compact mode only non-exits and the monitored sample of exits label
 * the tuner's window, so its first re-tune on served data comes after ~1,700 requests; until then
 * the validation split's thresholds hold (about 71 % exits on fmnist-resnet, against ~91 % after).
 */
async function steadyThroughputRps(
  client: EscapementClient,
  model: string,
  inputsFor: (i: number) => Tensor[],
  label: string,
  saturation: WorkloadPlan['saturation'],
): Promise<number> {
  const warmRate = Math.min(200, saturation.ratePerSec / 6);
  await runOpenLoop(client, {
    model,
    numRequests: Math.round(warmRate),
    ratePerSec: warmRate,
    sloMs: 10_000,
    seed: 99,
    inputsFor,
    ...(LOAD_GENERATOR_NICENESS === undefined ? {} : { niceness: LOAD_GENERATOR_NICENESS }),
  });
  progress(`${label}: settling (one unmeasured saturating run) ...`);
  await runOpenLoop(client, {
    model,
    ...saturation,
    sloMs: 10_000,
    seed: 3,
    inputsFor,
    ...(LOAD_GENERATOR_NICENESS === undefined ? {} : { niceness: LOAD_GENERATOR_NICENESS }),
  });
  progress(`${label}: saturating throughput ...`);
  const saturate = await runOpenLoop(client, {
    model,
    ...saturation,
    sloMs: 10_000,
    seed: 2,
    inputsFor,
    ...(LOAD_GENERATOR_NICENESS === undefined ? {} : { niceness: LOAD_GENERATOR_NICENESS }),
  });
  return saturate.responses.filter((r) => r.status === 'OK').length / saturate.durationSec;
}

/**
 * The same saturation with ONE worker, so that its inference thread has a core to itself and the
 * controller, the client and the message handling run on the other: on a 2-core machine this
 * separates what the modes cost the worker from what co-locating everything costs.
 */
async function oneWorkerThroughput(model: string, inputsFor: (i: number) => Tensor[], plan: WorkloadPlan): Promise<Record<string, number>> {
  const rps: Record<string, number> = {};
  for (const variant of VARIANTS) {
    const label = `${NAMES[variant]}, one worker`;
    progress(`${label}: starting a controller and 1 worker ...`);
    const cluster = await LocalCluster.start({
      numWorkers: 1,
      modelDir: 'models',
      preload: [model],
      controllerArgs: controllerArgsOf(variant, `${model}-one-worker`),
    });
    const client = await EscapementClient.connect(cluster.clientUrl);
    try {
      await cluster.waitUntilServing(client, [model], undefined, SERVING_TIMEOUT_MS);
      rps[`${NAMES[variant]}Rps`] = await steadyThroughputRps(client, model, inputsFor, label, {
        numRequests: Math.round(plan.saturation.numRequests / 2),
        ratePerSec: Math.round(plan.saturation.ratePerSec / 2),
      });
    } finally {
      await client.close();
      await cluster.stop();
    }
  }
  return {
    ...rps,
    releaseRatio: rps.releaseRps! / rps.vanillaRps!,
    compactRatio: rps.compactRps! / rps.vanillaRps!,
    releaseChainRatio: rps.releaseChainRps! / rps.vanillaRps!,
  };
}

/** Rounds of the alternated saturation (EXITS_ALTERNATED_ROUNDS; 0 skips it). */
const ALTERNATED_ROUNDS = Number(process.env.EXITS_ALTERNATED_ROUNDS ?? 3);
const ALTERNATED_VARIANTS = ['off', 'release', 'compact'] as const;

/**
 * Two workers' throughput ratios with the variants alternated. The sequential saturations above
 * run minutes apart, and the host's speed drifts in between: release over vanilla read 0.91-1.06x
 * over four runs of one session. Here the three clusters are up at once (the idle ones only
 * heartbeat), each settles with one unmeasured saturating run, and then every round runs one
 * saturating run per variant (half the usual requests), vanilla, release, compact. Each ratio is
 * read within its round (bench/alternated-ratios.ts).
 */
async function alternatedThroughput(model: string, inputsFor: (i: number) => Tensor[], plan: WorkloadPlan) {
  const clusters: { variant: (typeof ALTERNATED_VARIANTS)[number]; cluster: LocalCluster; client: EscapementClient }[] = [];
  const short = { numRequests: Math.round(plan.saturation.numRequests / 2), ratePerSec: plan.saturation.ratePerSec };
  try {
    for (const variant of ALTERNATED_VARIANTS) {
      const label = `${NAMES[variant]}, alternated`;
      progress(`${label}: starting a controller and 2 workers ...`);
      const cluster = await LocalCluster.start({
        numWorkers: 2,
        modelDir: 'models',
        preload: [model],
        controllerArgs: controllerArgsOf(variant, `${model}-alternated`),
      });
      const client = await EscapementClient.connect(cluster.clientUrl);
      clusters.push({ variant, cluster, client });
      await cluster.waitUntilServing(client, [model], undefined, SERVING_TIMEOUT_MS);
      await steadyThroughputRps(client, model, inputsFor, label, plan.saturation);
    }
    const rounds: Round[] = [];
    for (let k = 0; k < ALTERNATED_ROUNDS; k++) {
      const round: Round = {};
      for (const { variant, client } of clusters) {
        progress(`alternated saturation, round ${k + 1} of ${ALTERNATED_ROUNDS}: ${NAMES[variant]} ...`);
        const run = await runOpenLoop(client, {
          model,
          ...short,
          sloMs: 10_000,
          seed: 31 + k,
          inputsFor,
          ...(LOAD_GENERATOR_NICENESS === undefined ? {} : { niceness: LOAD_GENERATOR_NICENESS }),
        });
        round[NAMES[variant]] = run.responses.filter((r) => r.status === 'OK').length / run.durationSec;
      }
      rounds.push(round);
    }
    const ratios = alternatedRatios(rounds, NAMES.off);
    return { rounds, release: ratios.release!, compact: ratios.compact! };
  } finally {
    for (const { cluster, client } of clusters) {
      await client.close();
      await cluster.stop();
    }
  }
}

/** One open-loop phase's answers against the full model's predictions and the labels. */
function summarizePhase(work: Workload, answered: InferResponse[], chosenRamps: number[]) {
  const ok = answered.filter((r): r is InferResponse => r?.status === 'OK');
  const predictionOf = (r: InferResponse) => (r.early ? r.prediction! : argmax(asFloat32(r.outputs[0]!.data)));
  let agree = 0;
  let correct = 0;
  answered.forEach((r, i) => {
    if (r.status !== 'OK') return;
    const p = predictionOf(r);
    if (p === work.fullPrediction(i)) agree++;
    if (p === work.labelOf(i)) correct++;
  });
  const exitFractions = Object.fromEntries(chosenRamps.map((id) => [id, ok.filter((r) => r.early && r.exitRamp === id).length / Math.max(1, ok.length)]));
  const lat = percentilesMs(ok.map((r) => r.clientLatencyMs));
  const rejected = answered.filter((r) => r.status === 'REJECTED').length;
  const missed = answered.filter((r) => r.status === 'DEADLINE_MISSED').length;
  return {
    p50Ms: lat.p50Ms,
    p90Ms: lat.p90Ms,
    p99Ms: lat.p99Ms,
    sloAttainment: ok.length / answered.length,
    agreement: agree / Math.max(1, ok.length),
    accuracy: correct / Math.max(1, ok.length),
    exitFraction: ok.filter((r) => r.early).length / Math.max(1, ok.length),
    exitFractions,
    numRequests: answered.length,
    rejected,
    missed,
    /** Admitted (not rejected at arrival) and then not answered in time, % of admitted. */
    missedAfterAdmissionPct: (100 * missed) / Math.max(1, answered.length - rejected),
  };
}

/** Every variant on one workload; returns its JSON section. */
async function runWorkload(work: Workload, plan: WorkloadPlan = SMALL_MODEL_PLAN): Promise<Record<string, unknown>> {
  const model = work.model;
  const { inputsFor } = work;
  const ee = loadModelEntry('models', model).manifest.earlyExit!;
  const results: Record<string, unknown> = { model, chosenRamps: ee.chosenRamps, thresholds: ee.initialThresholds };
  const entry = loadModelEntry('models', model);
  const fixedShape = entry.manifest.inputs.every((spec) => spec.shape.slice(1).every((d) => d > 0));
  const CEILING_BATCH = 16;
  let chainCost: Awaited<ReturnType<typeof measureChainCost>> | undefined;
  if (fixedShape) {
    progress(`${model}: the chain's own cost at batch ${CEILING_BATCH} (whole vs chain, in process) ...`);
    const rows = Array.from({ length: CEILING_BATCH }, (_, i) => inputsFor(i));
    const batch = rows[0]!.map((t, k) => ({
      ...t,
      shape: [CEILING_BATCH, ...t.shape.slice(1)],
      data: Buffer.concat(rows.map((r) => Buffer.from(r[k]!.data))),
    }));
    chainCost = await measureChainCost(entry, batch, CEILING_BATCH, plan.chainCostRuns);
    results.chainCost = chainCost;
  }
  const rows: Record<string, string | number>[] = [];
  let latencyRate = 0;
  let vanillaRps = 0;
  for (const variant of VARIANTS) {
    progress(`${NAMES[variant]}: starting a controller and 2 workers ...`);
    const cluster = await LocalCluster.start({ numWorkers: 2, modelDir: 'models', preload: [model], controllerArgs: controllerArgsOf(variant, model) });
    const client = await EscapementClient.connect(cluster.clientUrl);
    try {
      await cluster.waitUntilServing(client, [model], undefined, SERVING_TIMEOUT_MS);
      const throughputRps = await steadyThroughputRps(client, model, inputsFor, NAMES[variant], plan.saturation);
      if (variant === 'off') {
        vanillaRps = throughputRps;
        latencyRate = Math.round(plan.loadFraction * throughputRps);
        results.latencyPhase = { ratePerSec: latencyRate, loadFraction: plan.loadFraction, seconds: plan.latencySeconds, sloMs: plan.sloMs };
      }
      progress(`${NAMES[variant]}: latency at ${latencyRate} req/s ...`);
      const latency = await runOpenLoop(client, {
        model,
        numRequests: latencyRate * plan.latencySeconds,
        ratePerSec: latencyRate,
        sloMs: plan.sloMs,
        seed: 1,
        inputsFor,
        ...(LOAD_GENERATOR_NICENESS === undefined ? {} : { niceness: LOAD_GENERATOR_NICENESS }),
      });
      const summary = { ...summarizePhase(work, latency.responses, ee.chosenRamps), throughputRps };
      // The chain-only release is measured for its throughput and latency, not the SLO phases.
      const phases = variant === 'release-chain' ? undefined : plan.sloPhases;
      if (phases) {
        const rate = Math.round(phases.loadFraction * vanillaRps);
        const runs = [];
        for (let k = 0; k < phases.runs; k++) {
          progress(
            `${NAMES[variant]}: ${Math.round(100 * phases.loadFraction)} % of vanilla capacity (${rate} req/s), SLO ${phases.sloMs} ms, run ${k + 1} of ${phases.runs} ...`,
          );
          const cpu = startCpuMeter(cluster.processes());
          const run = await runOpenLoop(client, {
            model,
            numRequests: rate * phases.seconds,
            ratePerSec: rate,
            sloMs: phases.sloMs,
            seed: 11 + k,
            inputsFor,
            ...(LOAD_GENERATOR_NICENESS === undefined ? {} : { niceness: LOAD_GENERATOR_NICENESS }),
          });
          runs.push({ ...summarizePhase(work, run.responses, ee.chosenRamps), scheduleLagP99Ms: percentilesMs(run.scheduleLagMs).p99Ms, cpuCores: cpu.stop() });
        }
        const burstyRate = Math.round(phases.burstyLoad * vanillaRps);
        progress(`${NAMES[variant]}: bursty arrivals (gamma, CV ${phases.burstyCv}) at ${burstyRate} req/s, SLO ${phases.sloMs} ms ...`);
        const bursty = await runOpenLoop(client, {
          model,
          numRequests: burstyRate * phases.seconds,
          ratePerSec: burstyRate,
          sloMs: phases.sloMs,
          seed: 21,
          inputsFor,
          ...(LOAD_GENERATOR_NICENESS === undefined ? {} : { niceness: LOAD_GENERATOR_NICENESS }),
          arrivals: 'gamma',
          cv: phases.burstyCv,
        });
        Object.assign(summary, {
          at70Pct: { ratePerSec: rate, sloMs: phases.sloMs, runs },
          bursty: { ratePerSec: burstyRate, cv: phases.burstyCv, sloMs: phases.sloMs, ...summarizePhase(work, bursty.responses, ee.chosenRamps) },
        });
      }
      results[NAMES[variant]] = summary;
      rows.push({
        variant: NAMES[variant],
        p50Ms: summary.p50Ms,
        p90Ms: summary.p90Ms,
        p99Ms: summary.p99Ms,
        'slo %': 100 * summary.sloAttainment,
        'agree %': 100 * summary.agreement,
        'acc %': 100 * summary.accuracy,
        'exit %': 100 * summary.exitFraction,
        'max rps': Math.round(throughputRps),
      });
    } finally {
      await client.close();
      await cluster.stop();
    }
  }
  const vanilla = results.vanilla as { p50Ms: number; throughputRps: number };
  for (const name of ['release', 'compact', 'releaseChain']) {
    const r = results[name] as { p50Ms: number; throughputRps: number; throughputRatio?: number };
    results[`${name}P50Ratio`] = r.p50Ms / vanilla.p50Ms;
    results[`${name}ThroughputRatio`] = r.throughputRps / vanilla.throughputRps;
    r.throughputRatio = r.throughputRps / vanilla.throughputRps;
  }
  if (plan.sloPhases) {
    type Phased = {
      at70Pct: { runs: { sloAttainment: number; p50Ms: number; agreement: number; cpuCores: CpuCores }[] };
      bursty: { missedAfterAdmissionPct: number; agreement: number; sloAttainment: number; rejected: number; missed: number; numRequests: number };
    };
    const [off, rel, com] = (['vanilla', 'release', 'compact'] as const).map((n) => results[n] as Phased);
    results.sloMsAt70Pct = plan.sloPhases.sloMs;
    results.sloWithoutRampsAt70Pct = off!.at70Pct.runs.map((r) => r.sloAttainment);
    results.sloWithRampsAt70Pct = com!.at70Pct.runs.map((r) => r.sloAttainment);
    results.sloReleaseAt70Pct = rel!.at70Pct.runs.map((r) => r.sloAttainment);
    results.compactP50RatioAt70Pct = com!.at70Pct.runs.map((r, k) => r.p50Ms / off!.at70Pct.runs[k]!.p50Ms);
    results.bursty = {
      cv: plan.sloPhases.burstyCv,
      loadFraction: plan.sloPhases.burstyLoad,
      missedAfterAdmissionPct: {
        vanilla: off!.bursty.missedAfterAdmissionPct,
        release: rel!.bursty.missedAfterAdmissionPct,
        compact: com!.bursty.missedAfterAdmissionPct,
      },
      agreement: { release: rel!.bursty.agreement, compact: com!.bursty.agreement },
      sloAttainment: { vanilla: off!.bursty.sloAttainment, release: rel!.bursty.sloAttainment, compact: com!.bursty.sloAttainment },
    };
    const pct = (xs: number[]) => xs.map((x) => (100 * x).toFixed(2)).join(' / ');
    process.stdout.write(
      `\n${model}: 3 runs at ${Math.round(100 * plan.sloPhases.loadFraction)} % of vanilla capacity, SLO ${plan.sloPhases.sloMs} ms (goal: with ramps >= without, >= 99.5 %)\n`,
    );
    process.stdout.write(
      `${formatTable(
        (['vanilla', 'release', 'compact'] as const).map((n) => {
          const v = results[n] as Phased;
          return {
            variant: n,
            'slo % per run': pct(v.at70Pct.runs.map((r) => r.sloAttainment)),
            'p50 ms per run': v.at70Pct.runs.map((r) => r.p50Ms.toFixed(1)).join(' / '),
            'agree %': pct(v.at70Pct.runs.map((r) => r.agreement)),
            'host cores busy (workers)': v.at70Pct.runs.map((r) => cpuSummary(r.cpuCores)).join(' / '),
            'bursty slo %': (100 * v.bursty.sloAttainment).toFixed(2),
            'bursty rejected': v.bursty.rejected,
            'bursty missed after admission %': v.bursty.missedAfterAdmissionPct.toFixed(2),
            'bursty agree %': (100 * v.bursty.agreement).toFixed(2),
          };
        }),
      )}\n`,
    );
    process.stdout.write(
      `compact's median over vanilla's at 70 %, per run: ${(results.compactP50RatioAt70Pct as number[]).map((r) => `${r.toFixed(2)}x`).join(' / ')} (goal <= 0.6x, agreement >= 99 %)\n`,
    );
  }
  if (chainCost) {
    const compact = results.compact as { exitFractions: Record<string, number> };
    const profile = ee.profile;
    const siteUpToMs = Object.fromEntries(
      ee.chosenRamps.map((id) => [id, profile.siteUpToMs[id]![CEILING_BATCH]! * (chainCost.wholeMs / profile.wholeMs[CEILING_BATCH]!)]),
    );
    results.ceilings = exitCeilings({
      wholeMs: chainCost.wholeMs,
      chainMs: chainCost.chainMs,
      siteUpToMs,
      exitFractions: compact.exitFractions,
      monitorFraction: 0.1,
    });
  }
  if (chainCost) results.oneWorker = await oneWorkerThroughput(model, inputsFor, plan);
  if (ALTERNATED_ROUNDS > 0) {
    const alternated = await alternatedThroughput(model, inputsFor, plan);
    results.alternated = alternated;
    for (const name of ['release', 'compact'] as const) (results[name] as Record<string, unknown>).throughputRatioAlternated = alternated[name].median;
  }
  process.stdout.write(`\n${model}\n${formatTable(rows)}\n`);
  if (chainCost) {
    const ceilings = results.ceilings as { release: number; compact: number };
    process.stdout.write(
      `chain cost at batch ${CEILING_BATCH}, in process: whole ${chainCost.wholeMs.toFixed(2)} ms, chain ${chainCost.chainMs.toFixed(2)} ms (${chainCost.ratio.toFixed(2)}x); ` +
        `compute-bound ceilings from it and the exits seen: release ${ceilings.release.toFixed(2)}x, compact ${ceilings.compact.toFixed(2)}x\n`,
    );
    const one = results.oneWorker as Record<string, number>;
    process.stdout.write(
      `one worker (a core to itself, the controller and client on the other): vanilla ${Math.round(one.vanillaRps!)} req/s, release ` +
        `${one.releaseRatio!.toFixed(2)}x (through the chain alone ${one.releaseChainRatio!.toFixed(2)}x), compact ${one.compactRatio!.toFixed(2)}x\n`,
    );
    if (plan.sloPhases) {
      // How saturated the host is at the 70 % rate: cores kept busy by inference alone, at the
      // largest batch's efficiency (a lower bound; batches that fit the SLO cost more a row).
      const rate = Math.round(plan.sloPhases.loadFraction * vanillaRps);
      results.inferenceCoresAt70Pct = rate / one.vanillaRps!;
      process.stdout.write(
        `at ${rate} req/s (70 %), inference alone keeps at least ${(rate / one.vanillaRps!).toFixed(2)} of this host's ${availableParallelism()} cores busy ` +
          `(the rate over one worker's saturating throughput); the controller, the client and the load generator share the rest\n`,
      );
    }
  }
  process.stdout.write(
    `median vs vanilla at ${Math.round(100 * plan.loadFraction)} %: release ${(results.releaseP50Ratio as number).toFixed(2)}x, compact ${(results.compactP50Ratio as number).toFixed(2)}x ` +
      `(goal <= 0.5x); throughput vs vanilla: release ${(results.releaseThroughputRatio as number).toFixed(2)}x ` +
      `(goal >= 0.97x; through the chain alone ${(results.releaseChainThroughputRatio as number).toFixed(2)}x), compact ${(results.compactThroughputRatio as number).toFixed(2)}x (goal >= 1.3x)\n`,
  );
  if (results.alternated) {
    const alternated = results.alternated as { release: AlternatedRatio; compact: AlternatedRatio };
    const perRound = (r: AlternatedRatio) => r.perRound.map((x) => `${x.toFixed(2)}x`).join(' / ');
    process.stdout.write(
      `throughput vs vanilla, alternated (${ALTERNATED_ROUNDS} rounds, median): release ${alternated.release.median.toFixed(2)}x (${perRound(alternated.release)}), ` +
        `compact ${alternated.compact.median.toFixed(2)}x (${perRound(alternated.compact)})\n`,
    );
  }
  return results;
}

/** "1.82 (1.50)": cores the host kept busy over a phase, and those of the workers among them. */
function cpuSummary(cores: CpuCores): string {
  const workers = Object.entries(cores.byProcess)
    .filter(([name]) => name !== 'controller')
    .reduce((sum, [, c]) => sum + c, 0);
  return `${cores.host === undefined ? '?' : cores.host.toFixed(2)} (${workers.toFixed(2)})`;
}

/** The sections a run leaves alone (EXITS_WORKLOADS names a subset) keep their last figures. */
function previousResults(): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  let results: Record<string, unknown> = previousResults();
  if (WORKLOADS.includes('cnn')) {
    const { realSize, text } = results;
    results = {
      ...(await runWorkload(await loadWorkload('fmnist-resnet', 'datasets/fashion-mnist-test'), await fmnistPlan())),
      ...(realSize ? { realSize } : {}),
      ...(text ? { text } : {}),
    };
  }
  if (WORKLOADS.includes('real')) {
    const work = await loadWorkload(REAL_SIZE_MODEL, 'datasets/fashion-mnist-test');
    progress(`${REAL_SIZE_MODEL}: batch-1 run time on one thread ...`);
    const runMsBatch1 = await batch1RunMs(REAL_SIZE_MODEL, work.inputsFor(0));
    results.realSize = { model: REAL_SIZE_MODEL, runMsBatch1, ...(await runWorkload(work, realSizePlan(REAL_SIZE_MODEL))) };
  }
  if (WORKLOADS.includes('text')) results.text = await runWorkload(await loadWorkload('spam-transformer', 'datasets/spam-assassin'));
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`wrote ${RESULTS_FILE} (${WORKLOADS.join(', ')}; other sections kept)\n`);
}

await main();
