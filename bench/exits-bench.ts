/**
 * `npm run bench:exits`: the bundled fmnist-resnet package served by 2 real workers, vanilla vs
 * ramps-release vs ramps-compact, each with the same arrival sequence and the same inputs (the
 * serving part of the dataset, in order). Per variant: the maximum sustainable throughput (a
 * saturating open loop with a generous SLO), then p50/p90/p99 latency at one offered load for all
 * variants (EXITS_LOAD × vanilla's maximum, default 0.6),
 * agreement with the full model, ground-truth accuracy, and the exit fraction per ramp.
 * Prints a table and writes bench/results/exits.json.
 *
 * Ramp thresholds are the package's initial ones (chosen on the validation split for ≥ 99 %
 * agreement); online tuning is not part of this measurement yet.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { EscapementClient, type InferResponse } from '../client/escapement-client.js';
import { formatTable, percentilesMs } from '../client/latency-summary.js';
import { runOpenLoop } from '../client/open-loop.js';
import { LocalCluster } from '../cli/local-cluster.js';
import { loadDataset } from '../prepare/dataset.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { asFloat32, bytesOf } from '../shared/tensor.js';

const MODEL = 'fmnist-resnet';
const VARIANTS = ['off', 'release', 'compact'] as const;
const NAMES: Record<(typeof VARIANTS)[number], string> = { off: 'vanilla', release: 'release', compact: 'compact' };
/** Offered load of the latency phase as a fraction of vanilla's measured maximum throughput. */
const LOAD_FRACTION = Number(process.env.EXITS_LOAD ?? 0.6);
const LATENCY_SECONDS = Number(process.env.EXITS_SECONDS ?? 6);
const SLO_MS = 100;

function progress(line: string): void {
  process.stderr.write(`[bench:exits] ${line}\n`);
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

async function main(): Promise<void> {
  const entry = loadModelEntry('models', MODEL);
  const ee = entry.manifest.earlyExit!;
  const dataset = loadDataset('datasets/fashion-mnist-test');
  const first = ee.dataset.serveStart;
  const numServe = dataset.numSamples - first;
  const inputsFor = (i: number) => {
    const k = first + (i % numServe);
    return [{ name: ee.primaryInput, dtype: 'float32' as const, shape: [1, 1, 28, 28], data: bytesOf(dataset.inputs.slice(k * 784, (k + 1) * 784)) }];
  };
  const labelOf = (i: number) => dataset.labels![first + (i % numServe)]!;

  progress('the full model\'s predictions on the serving data ...');
  const session = await ort.InferenceSession.create(entry.onnxPath, { logSeverityLevel: 3 });
  const logits = (await session.run({ [ee.primaryInput]: new ort.Tensor('float32', dataset.inputs.slice(first * 784), [numServe, 1, 28, 28]) }))[ee.finalOutput]!.data as Float32Array;
  await session.release();
  const fullPrediction = (i: number) => argmax(logits.subarray((i % numServe) * 10, (i % numServe) * 10 + 10));

  const results: Record<string, unknown> = { model: MODEL, chosenRamps: ee.chosenRamps, thresholds: ee.initialThresholds };
  const rows: Record<string, string | number>[] = [];
  let latencyRate = 0;
  for (const variant of VARIANTS) {
    progress(`${NAMES[variant]}: starting a controller and 2 workers ...`);
    const cluster = await LocalCluster.start({ numWorkers: 2, modelDir: 'models', preload: [MODEL], controllerArgs: ['--exit-mode', variant] });
    const client = await EscapementClient.connect(cluster.clientUrl);
    try {
      await cluster.waitUntilServing(client, [MODEL]);
      // warm-up
      await runOpenLoop(client, { model: MODEL, numRequests: 200, ratePerSec: 200, sloMs: 1000, seed: 99, inputsFor });
      progress(`${NAMES[variant]}: saturating throughput ...`);
      const saturate = await runOpenLoop(client, { model: MODEL, numRequests: 4000, ratePerSec: 4000, sloMs: 10_000, seed: 2, inputsFor });
      const throughputRps = saturate.responses.filter((r) => r.status === 'OK').length / saturate.durationSec;
      if (variant === 'off') {
        latencyRate = Math.round(LOAD_FRACTION * throughputRps);
        results.latencyPhase = { ratePerSec: latencyRate, loadFraction: LOAD_FRACTION, seconds: LATENCY_SECONDS, sloMs: SLO_MS };
      }
      progress(`${NAMES[variant]}: latency at ${latencyRate} req/s ...`);
      const latency = await runOpenLoop(client, { model: MODEL, numRequests: latencyRate * LATENCY_SECONDS, ratePerSec: latencyRate, sloMs: SLO_MS, seed: 1, inputsFor });
      const answered = latency.responses;
      const ok = answered.filter((r): r is InferResponse => r?.status === 'OK');
      const predictionOf = (r: InferResponse) => (r.early ? r.prediction! : argmax(asFloat32(r.outputs[0]!.data)));
      let agree = 0;
      let correct = 0;
      answered.forEach((r, i) => {
        if (r.status !== 'OK') return;
        const p = predictionOf(r);
        if (p === fullPrediction(i)) agree++;
        if (p === labelOf(i)) correct++;
      });
      const exitFractions = Object.fromEntries(ee.chosenRamps.map((id) => [id, ok.filter((r) => r.early && r.exitRamp === id).length / Math.max(1, ok.length)]));
      const lat = percentilesMs(ok.map((r) => r.clientLatencyMs));
      const summary = {
        p50Ms: lat.p50Ms,
        p90Ms: lat.p90Ms,
        p99Ms: lat.p99Ms,
        sloAttainment: ok.length / answered.length,
        agreement: agree / Math.max(1, ok.length),
        accuracy: correct / Math.max(1, ok.length),
        exitFraction: ok.filter((r) => r.early).length / Math.max(1, ok.length),
        exitFractions,
        throughputRps,
      };
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
  for (const name of ['release', 'compact']) {
    const r = results[name] as { p50Ms: number; throughputRps: number };
    results[`${name}P50Ratio`] = r.p50Ms / vanilla.p50Ms;
    results[`${name}ThroughputRatio`] = r.throughputRps / vanilla.throughputRps;
  }
  process.stdout.write(`${formatTable(rows)}\n`);
  process.stdout.write(`median vs vanilla: release ${(results.releaseP50Ratio as number).toFixed(2)}x, compact ${(results.compactP50Ratio as number).toFixed(2)}x (goal <= 0.5x); throughput vs vanilla: release ${(results.releaseThroughputRatio as number).toFixed(2)}x (goal >= 0.99x), compact ${(results.compactThroughputRatio as number).toFixed(2)}x (goal >= 1.3x)\n`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/exits.json', `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write('wrote bench/results/exits.json\n');
}

await main();
