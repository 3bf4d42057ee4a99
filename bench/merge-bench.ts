/**
 * `npm run bench:merge`: is merging survivors across batches worth building on this CPU? Times each
 * segment of the bundled packages' chains (their chosen ramps; one intra-op thread, as workers run)
 * at batch sizes 1-16 and computes merging's throughput ceiling over compact mode
 * (merge-ceiling.ts), with the exit fractions the package's validation split measured and, where
 * bench:exits has run, those measured in serving. Prints a table, writes bench/results/merge.json.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { MONITOR_FRACTION } from '../controller/model-spec.js';
import { sessionOptions } from '../onnx/session-options.js';
import { monotonicNowNs } from '../shared/clock.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { mergeCeiling, type MergeCeiling } from './merge-ceiling.js';

const MODELS: { name: string; runs: number }[] = [
  { name: 'fmnist-resnet', runs: 40 },
  { name: 'fmnist-resnet-112', runs: 5 },
];
const SIZES = [1, 2, 3, 4, 6, 8, 12, 16];
const FULL_BATCHES = [8, 16];
const RESULTS = 'bench/results/merge.json';

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;

/** Median run time (ms) of every segment at every size, sizes interleaved within each run. */
async function timeSegments(name: string, runs: number): Promise<Record<number, number>[]> {
  const entry = loadModelEntry('models', name);
  const ee = entry.manifest.earlyExit!;
  const folder = join('models', name);
  const options = { ...sessionOptions({ device: 'cpu', intraOpNumThreads: 1 }), graphOptimizationLevel: ee.compile.chainOptimizationLevel ?? 'all' };
  const sessions = await Promise.all(ee.segments.map((s) => ort.InferenceSession.create(join(folder, s.file), options)));
  const input = entry.manifest.inputs[0]!;
  const samples: Record<number, number[]>[] = ee.segments.map(() => Object.fromEntries(SIZES.map((b) => [b, []])));
  try {
    for (let run = -2; run < runs; run++) {
      for (const b of SIZES) {
        const shape = [b, ...input.shape.slice(1)];
        let env: Record<string, ort.Tensor> = {
          [input.name]: new ort.Tensor(
            'float32',
            Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, i) => (i % 255) / 255),
            shape,
          ),
        };
        for (const [k, session] of sessions.entries()) {
          const feeds = Object.fromEntries(ee.segments[k]!.inputs.map((n) => [n, env[n]!]));
          const t0 = monotonicNowNs();
          const out = await session.run(feeds);
          if (run >= 0) samples[k]![b]!.push((monotonicNowNs() - t0) / 1e6);
          env = { ...env, ...out };
        }
      }
      process.stderr.write(`\r${name}: run ${Math.max(0, run + 1)}/${runs}`);
    }
    process.stderr.write('\n');
  } finally {
    for (const s of sessions) await s.release();
  }
  return samples.map((bySize) => Object.fromEntries(SIZES.map((b) => [b, median(bySize[b]!)])));
}

/** Per chosen ramp, the fraction of all requests bench:exits saw answered there (compact mode). */
function servedExitFractions(name: string, chosen: number[]): number[] | undefined {
  if (!existsSync('bench/results/exits.json')) return undefined;
  const exits = JSON.parse(readFileSync('bench/results/exits.json', 'utf8')) as {
    model?: string;
    compact?: { exitFractions?: Record<string, number> };
    realSize?: { model?: string; compact?: { exitFractions?: Record<string, number> } };
  };
  const compact = exits.model === name ? exits.compact : exits.realSize?.model === name ? exits.realSize.compact : undefined;
  const bySite = compact?.exitFractions;
  return bySite && chosen.every((s) => bySite[s] !== undefined) ? chosen.map((s) => bySite[s]!) : undefined;
}

interface ModelResult {
  model: string;
  segmentMs: Record<number, number>[];
  /** Segment time per row at batch 16 over batch 1: 1 means no batching gain on this host. */
  perRowCost16Over1: number[];
  ceilings: { exits: 'validation' | 'served'; exitFractions: number[]; byBatch: MergeCeiling[] }[];
}

async function main(): Promise<void> {
  const results: ModelResult[] = [];
  for (const { name, runs } of MODELS) {
    const entry = loadModelEntry('models', name);
    const ee = entry.manifest.earlyExit!;
    const segmentMs = await timeSegments(name, runs);
    const variants: { exits: 'validation' | 'served'; exitFractions: number[] }[] = [{ exits: 'validation', exitFractions: ee.selection.exitFractions }];
    const served = servedExitFractions(name, ee.chosenRamps);
    if (served) variants.push({ exits: 'served', exitFractions: served });
    results.push({
      model: name,
      segmentMs,
      perRowCost16Over1: segmentMs.map((t) => t[16]! / 16 / t[1]!),
      ceilings: variants.map((v) => ({
        ...v,
        byBatch: FULL_BATCHES.map((batchSize) => mergeCeiling({ segmentMs, exitFractions: v.exitFractions, monitorFraction: MONITOR_FRACTION, batchSize })),
      })),
    });
  }
  console.log("\nmerging survivors across batches: throughput ceiling over compact mode (before merging's own costs)");
  console.log('model              | segment cost per row, b16 / b1   | exits      | gain at b8 | gain at b16');
  for (const r of results) {
    for (const c of r.ceilings) {
      const perRow = r.perRowCost16Over1.map((x) => x.toFixed(2)).join(' ');
      const [g8, g16] = c.byBatch.map((x) => `${((x.gain - 1) * 100).toFixed(1)} %`);
      console.log(`${r.model.padEnd(18)} | ${perRow.padEnd(32)} | ${c.exits.padEnd(10)} | ${g8!.padStart(10)} | ${g16!.padStart(11)}`);
    }
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify({ sizes: SIZES, monitorFraction: MONITOR_FRACTION, models: results }, null, 2)}\n`);
  console.log(`\nwrote ${RESULTS}`);
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
