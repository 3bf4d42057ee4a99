/**
 * Predictability of one model under load, for bench:core: two real workers serve it without ramps
 * at a fraction of their measured capacity, under the SLO rule (`sloFor`), and the controller's
 * action log gives how far each INFER's duration and start strayed from the plan.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EscapementClient } from '../client/escapement-client.js';
import { randomInputs } from '../client/input-tensors.js';
import { summarize } from '../loadgen/latency-summary.js';
import { runOpenLoop } from '../loadgen/open-loop.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { profiledCapacityRps } from '../loadgen/profiled-capacity.js';
import { sloFor } from '../loadgen/slo-rule.js';
import { loadModelEntry } from '../shared/model-manifest.js';

export function readActionLog(path: string): Record<string, string>[] {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  const header = lines[0]!.split(',');
  return lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i]!, v])));
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/** `name:ms;name:ms` (actions.csv's stage columns) as a map. */
function stageMs(cell: string | undefined): Map<string, number> {
  const stages = new Map<string, number>();
  for (const part of (cell ?? '').split(';')) {
    const at = part.lastIndexOf(':');
    if (at > 0) stages.set(part.slice(0, at), Number(part.slice(at + 1)));
  }
  return stages;
}

/**
 * Prediction errors of the INFERs in actions.csv rows: the whole action against the duration it
 * was planned with (what the planner's timeline uses), and two parts that say where a miss comes
 * from: how much the runs themselves varied while serving (the worker's `model` stage against
 * the median run of its batch size, i.e. an oracle that knows that median; compare with the same
 * oracle on runs alone, run-jitter.ts) and the hop around the run (the action's time outside every
 * stage: thread hand-offs and copies on the worker).
 */
export function inferErrors(rows: Record<string, string>[]) {
  const infers = rows.filter((r) => r.action_type === 'infer' && r.code === '0');
  const errorMs = infers.map((r) => Math.abs(Number(r.actual_duration_ms) - Number(r.expected_duration_ms)));
  const errorPct = infers.map((r, i) => (100 * errorMs[i]!) / Number(r.expected_duration_ms));
  const latenessMs = infers.map((r) => Number(r.start_lateness_ms));
  const runsBySize = new Map<string, number[]>();
  const hopMs: number[] = [];
  for (const r of infers) {
    const stages = stageMs(r.stages);
    const run = stages.get('model');
    if (run !== undefined) runsBySize.set(r.batch_size!, [...(runsBySize.get(r.batch_size!) ?? []), run]);
    if (stages.size > 0) hopMs.push(Math.max(0, Number(r.actual_duration_ms) - [...stages.values()].reduce((a, b) => a + b, 0)));
  }
  const runJitterPct = [...runsBySize.values()].flatMap((runs) => {
    const median = percentile(runs, 0.5);
    return runs.map((ms) => 100 * Math.abs(ms / median - 1));
  });
  return {
    numInferActions: infers.length,
    predictionErrorP50Pct: percentile(errorPct, 0.5),
    predictionErrorP99Pct: percentile(errorPct, 0.99),
    predictionErrorP50Ms: percentile(errorMs, 0.5),
    predictionErrorP99Ms: percentile(errorMs, 0.99),
    /** p99 of |run / median run of its batch size - 1| over the served runs, %. */
    servedRunJitterP99Pct: runJitterPct.length > 0 ? percentile(runJitterPct, 0.99) : Number.NaN,
    hopP50Ms: hopMs.length > 0 ? percentile(hopMs, 0.5) : Number.NaN,
    hopP99Ms: hopMs.length > 0 ? percentile(hopMs, 0.99) : Number.NaN,
    startLatenessP50Ms: percentile(latenessMs, 0.5),
    startLatenessP99Ms: percentile(latenessMs, 0.99),
  };
}

export interface PredictabilityOptions {
  model: string;
  /** Offered load as a fraction of the capacity measured first. */
  loadFraction: number;
  seconds: number;
  progress: (line: string) => void;
  /** Run a CPU hog (a busy loop in another process, one core's worth) during the measured run: a busy host. */
  busy?: boolean;
  /** Extra worker flags (e.g. --nice -10). */
  workerArgs?: string[];
  /** Workers serving the model (default 2, one per core of the machine the benchmarks ran on). */
  numWorkers?: number;
  /** Leave the workers' inference threads unpinned (LocalCluster pins each to a CPU of its own). */
  unpinned?: boolean;
}

/** A busy host: one process spinning on a core until stopped. */
export function startCpuHog(): { stop(): Promise<void> } {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  return {
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

export async function measurePredictability(options: PredictabilityOptions) {
  const { model, loadFraction, seconds, progress } = options;
  const label = `${model}${options.busy ? ', busy host' : ''}${options.unpinned ? ', unpinned' : ''}${options.workerArgs?.length ? ` (worker ${options.workerArgs.join(' ')})` : ''}`;
  const entry = loadModelEntry('models', model);
  const sloMs = sloFor(entry, undefined, undefined, 40);
  const inputPool = Array.from({ length: 64 }, (_, i) => randomInputs(entry.manifest, i + 1));
  const inputsFor = (i: number) => inputPool[i % inputPool.length]!;
  const profiledRps = profiledCapacityRps('models', model);

  const logDir = mkdtempSync(join(tmpdir(), 'escapement-predictability-'));
  progress(`${label}: starting a controller and 2 onnxruntime workers ...`);
  const cluster = await LocalCluster.start({
    numWorkers: options.numWorkers ?? 2,
    modelDir: 'models',
    preload: [model],
    controllerArgs: ['--log-dir', logDir],
    ...(options.workerArgs ? { workerArgs: options.workerArgs } : {}),
    ...(options.unpinned ? { pinInference: false } : {}),
  });
  let hog: { stop(): Promise<void> } | undefined;
  const client = await EscapementClient.connect(cluster.clientUrl);
  try {
    await cluster.waitUntilServing(client, [model], undefined, 240_000); // a real-size LOAD profiles for a minute
    progress(`${label}: capacity (saturating open loop, ~${profiledRps.toFixed(0)} req/s profiled) ...`);
    const saturation = { numRequests: Math.round(profiledRps * 6), ratePerSec: Math.round(profiledRps * 3) };
    await runOpenLoop(client, { model, ...saturation, sloMs: 10_000, seed: 4, inputsFor }); // settles the estimates
    const saturate = await runOpenLoop(client, { model, ...saturation, sloMs: 10_000, seed: 2, inputsFor });
    const capacityRps = saturate.responses.filter((r) => r.status === 'OK').length / saturate.durationSec;
    await new Promise((r) => setTimeout(r, 300)); // let the controller flush its log
    const numBefore = readActionLog(join(logDir, 'actions.csv')).length;
    const ratePerSec = capacityRps * loadFraction;
    progress(`${label}: ${Math.round(loadFraction * 100)} % of capacity, ${ratePerSec.toFixed(0)} req/s for ${seconds} s, SLO ${sloMs} ms ...`);
    // NOTE: the capacity is measured quiet, so a busy run offers the same load to a host with less room.
    if (options.busy) hog = startCpuHog();
    const run = await runOpenLoop(client, { model, numRequests: Math.round(ratePerSec * seconds), ratePerSec, sloMs, seed: 3, inputsFor });
    await hog?.stop();
    hog = undefined;
    await new Promise((r) => setTimeout(r, 300));
    const rows = readActionLog(join(logDir, 'actions.csv')).slice(numBefore);
    const summary = summarize(run.responses);
    return {
      model,
      busy: options.busy ?? false,
      workerArgs: options.workerArgs ?? [],
      numWorkers: options.numWorkers ?? 2,
      unpinned: options.unpinned ?? false,
      sloMs,
      loadFraction,
      capacityRps,
      sloAttainment: summary.sloAttainment,
      p50Ms: summary.p50Ms,
      p99Ms: summary.p99Ms,
      ...inferErrors(rows),
    };
  } finally {
    await hog?.stop();
    await client.close();
    await cluster.stop();
    rmSync(logDir, { recursive: true, force: true });
  }
}
