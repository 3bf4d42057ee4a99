/**
 * `npm run bench:tuner`: the exit monitor and its threshold tuner, replayed offline on every ramp's
 * recorded confidences, apart from serving. bench:adapt measures the same tuner in a live cluster,
 * where one run of each variant takes a minute and its latencies carry the host's noise; here the
 * monitor (controller/exit-monitor.ts, with compact mode's labelling from exit-control.ts) sees the
 * same streams as requests in batches, many times over with different batchings and labelled
 * samples, in seconds, so tuner settings compare on what they decide: the agreement of the answers
 * they give (whole stream and per tenth), their exits, and the time they save against the oracle
 * (per tenth, the best thresholds in hindsight within the budget: cli/oracle-schedule.ts).
 *
 * Streams (fmnist-resnet, compact mode): the demo's clean inputs, and bench:adapt's three drift
 * workloads (loadgen/drift.ts) at its length, each after a clean warm-up as `compare` replays one.
 * Prints a table, writes bench/results/tuner.json. TUNER_SEEDS (default 8) replays per stream;
 * TUNER_TRY adds variants to try, as JSON (`[{"name": "z 1", "overrides": {"boundZ": 1}}]`).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatTable } from '../loadgen/latency-summary.js';
import { rampConfidences } from '../loadgen/ramp-confidences.js';
import { datasetFeeder } from '../cli/replay-command.js';
import { loadModelEntry, type ModelEntry } from '../shared/model-manifest.js';
import { oracleOf, replayMonitor, type Stream, type TunerVariant } from './monitor-replay.js';
import { COLD_START_SAMPLES, MONITOR_FRACTION } from '../controller/model-spec.js';

const MODEL = 'fmnist-resnet';
const RESULTS_FILE = 'bench/results/tuner.json';
const CACHE_DIR = 'runs/bench-tuner';
const SEEDS = Number(process.env.TUNER_SEEDS ?? 8);
/** bench:adapt's drift runs hold 3,916 requests after a 3 s warm-up (~1,500 requests). */
const DRIFT_REQUESTS = 3916;
const WARMUP_REQUESTS = 1500;
/** The demo's run: 5,985 clean inputs measured (12 s), its warm-up on the inputs after them. */
const CLEAN_REQUESTS = 5985;
/** Rows per batch, drawn uniformly (the demo's batches at ~40 % load hold 1-6 requests). */
const MAX_BATCH = 6;
/** `stream:variant:seed`: print that replay's threshold and ramp changes. */
const TRACE = process.env.TUNER_TRACE;

/**
 * The settings compared; the first is the controller's default. The others say what bounds it:
 * its share of the budget; compact mode's labelling (a tenth of the exits once the window is full,
 * as before the effective-size rule of exit-control.ts; stepped: 50 / 25 % before 10 %, by window
 * size; every exit: what release mode sees); and the bound's margin (point estimate: z = 0, what
 * an oracle without hindsight would pick).
 */
const VARIANTS: TunerVariant[] = [
  { name: 'default', overrides: {} },
  { name: 'half budget', overrides: { budgetShare: 0.5 } },
  { name: 'a tenth labelled', overrides: {}, labelling: (n, suspects) => (suspects || n < COLD_START_SAMPLES ? 1 : MONITOR_FRACTION) },
  { name: 'stepped labelling', overrides: {}, labelling: (n, suspects) => (suspects || n < 512 ? 1 : n < 768 ? 0.5 : n < 1024 ? 0.25 : 0.1) },
  { name: 'all labelled', overrides: {}, labelling: () => 1 },
  { name: 'point estimate', overrides: { boundZ: 0 } },
  ...(process.env.TUNER_TRY ? (JSON.parse(process.env.TUNER_TRY) as TunerVariant[]) : []),
];

/** Every ramp's confidence on a stream: the warm-up's clean inputs first, then the measured ones. */
async function streamOf(entry: ModelEntry, name: string, drift: string | undefined, numMeasured: number): Promise<Stream> {
  const ee = entry.manifest.earlyExit!;
  const feeder = await datasetFeeder(entry, `datasets/${ee.dataset.name}`, numMeasured, drift);
  const order = (i: number) => (i < WARMUP_REQUESTS ? numMeasured + i : i - WARMUP_REQUESTS);
  const siteIds = ee.ramps.map((r) => r.siteId);
  // Computed once per model file and stream (~20 s each), kept under runs/.
  const cacheFile = join(CACHE_DIR, `${name}-${WARMUP_REQUESTS + numMeasured}-${entry.fileBytes}.json`);
  if (existsSync(cacheFile)) {
    const c = JSON.parse(readFileSync(cacheFile, 'utf8')) as {
      siteIds: number[];
      confidences: number[][];
      predictions: number[][];
      finalPredictions: number[];
    };
    const confidences = {
      siteIds: c.siteIds,
      confidences: c.confidences.map((x) => Float32Array.from(x)),
      predictions: c.predictions.map((x) => Int32Array.from(x)),
      finalPredictions: Int32Array.from(c.finalPredictions),
    };
    return { name, confidences, numWarmup: WARMUP_REQUESTS };
  }
  process.stderr.write(`[bench:tuner] ${name}: every ramp's confidence on ${WARMUP_REQUESTS + numMeasured} inputs ...\n`);
  const confidences = await rampConfidences(entry, siteIds, (i) => feeder.inputsFor(order(i)), WARMUP_REQUESTS + numMeasured);
  mkdirSync(CACHE_DIR, { recursive: true });
  const plain = {
    siteIds: confidences.siteIds,
    confidences: confidences.confidences.map((x) => [...x]),
    predictions: confidences.predictions.map((x) => [...x]),
    finalPredictions: [...confidences.finalPredictions],
  };
  writeFileSync(cacheFile, JSON.stringify(plain));
  return { name, confidences, numWarmup: WARMUP_REQUESTS };
}

const mean = (values: readonly number[]) => values.reduce((s, x) => s + x, 0) / Math.max(1, values.length);

async function main(): Promise<void> {
  const entry = loadModelEntry('models', MODEL);
  const ee = entry.manifest.earlyExit!;
  const streams = [await streamOf(entry, 'clean', undefined, CLEAN_REQUESTS)];
  for (const drift of ['class-mix', 'noise', 'shift']) streams.push(await streamOf(entry, drift, drift, DRIFT_REQUESTS));
  const rows: Record<string, string | number>[] = [];
  const results: Record<string, unknown> = {};
  for (const stream of streams) {
    const best = oracleOf(ee, stream, 0.01);
    const perVariant: Record<string, unknown> = { oracle: best };
    for (const variant of VARIANTS) {
      const runs = Array.from({ length: SEEDS }, (_, s) =>
        replayMonitor(ee, stream, variant, {
          seed: s + 1,
          maxBatch: MAX_BATCH,
          ...(TRACE === `${stream.name}:${variant.name}:${s + 1}`
            ? { onChange: (i: number, change: unknown) => process.stderr.write(`${i} ${JSON.stringify(change)}\n`) }
            : {}),
        }),
      );
      const summary = {
        agreement: mean(runs.map((r) => r.agreement)),
        worstAgreement: Math.min(...runs.map((r) => r.agreement)),
        worstTenth: Math.min(...runs.map((r) => r.worstTenth)),
        tenthsBelow99PerRun: mean(runs.map((r) => r.tenthsBelow99)),
        runsWithAllTenthsAt99: runs.filter((r) => r.tenthsBelow99 === 0).length,
        exitFraction: mean(runs.map((r) => r.exitFraction)),
        labelledExitShare: mean(runs.map((r) => r.labelledExitShare)),
        savingMs: mean(runs.map((r) => r.savingMs)),
        savingVsOracle: mean(runs.map((r) => r.savingMs)) / best.savingMs,
        runs,
      };
      perVariant[variant.name] = summary;
      rows.push({
        stream: stream.name,
        variant: variant.name,
        'agreement (worst run)': `${(100 * summary.agreement).toFixed(2)} (${(100 * summary.worstAgreement).toFixed(2)}) %`,
        'tenths < 99 % per run': summary.tenthsBelow99PerRun.toFixed(1),
        'runs all tenths ok': `${summary.runsWithAllTenthsAt99}/${SEEDS}`,
        'worst tenth': `${(100 * summary.worstTenth).toFixed(2)} %`,
        exits: `${(100 * summary.exitFraction).toFixed(1)} %`,
        'exits labelled': `${(100 * summary.labelledExitShare).toFixed(1)} %`,
        'saving vs oracle': summary.savingVsOracle.toFixed(2),
      });
    }
    results[stream.name] = perVariant;
  }
  process.stdout.write(`${formatTable(rows)}\n`);
  mkdirSync(dirname(RESULTS_FILE), { recursive: true });
  writeFileSync(RESULTS_FILE, `${JSON.stringify({ model: MODEL, exitMode: 'compact', seeds: SEEDS, streams: results }, null, 1)}\n`);
  process.stderr.write(`[bench:tuner] wrote ${RESULTS_FILE}\n`);
}

await main();
