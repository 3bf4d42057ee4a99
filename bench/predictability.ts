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
import { summarize } from '../client/latency-summary.js';
import { runOpenLoop } from '../client/open-loop.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { profiledCapacityRps } from '../client/profiled-capacity.js';
import { sloFor } from '../client/slo-rule.js';
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

/** Prediction error (% of predicted and ms) and start lateness of successful INFERs in an action log's rows. */
export function inferErrors(rows: Record<string, string>[]) {
  const infers = rows.filter((r) => r.action_type === 'infer' && r.code === '0');
  const errorMs = infers.map((r) => Math.abs(Number(r.actual_duration_ms) - Number(r.expected_duration_ms)));
  const errorPct = infers.map((r, i) => (100 * errorMs[i]!) / Number(r.expected_duration_ms));
  const latenessMs = infers.map((r) => Number(r.start_lateness_ms));
  return {
    numInferActions: infers.length,
    predictionErrorP50Pct: percentile(errorPct, 0.5),
    predictionErrorP99Pct: percentile(errorPct, 0.99),
    predictionErrorP50Ms: percentile(errorMs, 0.5),
    predictionErrorP99Ms: percentile(errorMs, 0.99),
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
  const label = `${model}${options.busy ? ', busy host' : ''}${options.workerArgs?.length ? ` (worker ${options.workerArgs.join(' ')})` : ''}`;
  const entry = loadModelEntry('models', model);
  const sloMs = sloFor(entry, undefined, undefined, 40);
  const inputPool = Array.from({ length: 64 }, (_, i) => randomInputs(entry.manifest, i + 1));
  const inputsFor = (i: number) => inputPool[i % inputPool.length]!;
  const profiledRps = profiledCapacityRps('models', model);

  const logDir = mkdtempSync(join(tmpdir(), 'escapement-predictability-'));
  progress(`${label}: starting a controller and 2 onnxruntime workers ...`);
  const cluster = await LocalCluster.start({ numWorkers: 2, modelDir: 'models', preload: [model], controllerArgs: ['--log-dir', logDir], ...(options.workerArgs ? { workerArgs: options.workerArgs } : {}) });
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
    return { model, busy: options.busy ?? false, workerArgs: options.workerArgs ?? [], sloMs, loadFraction, capacityRps, sloAttainment: summary.sloAttainment, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, ...inferErrors(rows) };
  } finally {
    await hog?.stop();
    await client.close();
    await cluster.stop();
    rmSync(logDir, { recursive: true, force: true });
  }
}
