/**
 * The floor under any INFER prediction on this host: a model's run time alone, one onnxruntime
 * session with one intra-op thread at the workers' niceness (-10), no serving around it, quiet and
 * with a CPU hog. The error of an oracle that knows each batch size's median run exactly,
 * |run / median - 1|, is what no estimator that predicts from the batch size can beat; the rest
 * of the serving error (bench:core's prediction error) comes from what serving runs beside it on
 * the same cores: the other worker, the controller, the load generator, the main threads.
 *
 * Runs in its own process (`node run-jitter.js MODEL busy|quiet`) so that its niceness does not
 * carry into the caller; prints one JSON line.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { sessionOptions } from '../onnx/session-options.js';
import { monotonicNowNs } from '../shared/clock.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { setProcessNiceness } from '../shared/thread-priority.js';
import { startCpuHog } from './predictability.js';

const BATCH_SIZES = [1, 4, 16];
/** Wall time of timed runs per batch size, and the least number of runs. */
const SECONDS_PER_SIZE = 3;
const MIN_RUNS = 30;

export interface RunJitter {
  model: string;
  busy: boolean;
  niceness: string;
  bySize: { batchSize: number; numRuns: number; medianMs: number; p99Ms: number; oracleErrorP99Pct: number }[];
  /** The worst batch size's p99 oracle error: the floor for `predictionErrorP99Pct`. */
  oracleErrorP99Pct: number;
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function measure(model: string, busy: boolean): Promise<RunJitter> {
  const niceProblem = setProcessNiceness(-10);
  const entry = loadModelEntry('models', model);
  const session = await ort.InferenceSession.create(entry.onnxPath, sessionOptions({ device: 'cpu', intraOpNumThreads: 1 }));
  const hog = busy ? startCpuHog() : undefined;
  const bySize: RunJitter['bySize'] = [];
  try {
    for (const batchSize of BATCH_SIZES) {
      const feeds = Object.fromEntries(
        entry.manifest.inputs.map((spec) => {
          const shape = [batchSize, ...spec.shape.slice(1)];
          return [
            spec.name,
            new ort.Tensor(
              'float32',
              Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i * 37) % 256),
              shape,
            ),
          ];
        }),
      );
      for (let i = 0; i < 5; i++) await session.run(feeds);
      const runsMs: number[] = [];
      const endNs = monotonicNowNs() + SECONDS_PER_SIZE * 1e9;
      while (runsMs.length < MIN_RUNS || monotonicNowNs() < endNs) {
        const t0 = monotonicNowNs();
        await session.run(feeds);
        runsMs.push((monotonicNowNs() - t0) / 1e6);
      }
      const sorted = [...runsMs].sort((a, b) => a - b);
      const medianMs = quantile(sorted, 0.5);
      const errors = runsMs.map((ms) => Math.abs(ms / medianMs - 1)).sort((a, b) => a - b);
      bySize.push({ batchSize, numRuns: runsMs.length, medianMs, p99Ms: quantile(sorted, 0.99), oracleErrorP99Pct: 100 * quantile(errors, 0.99) });
    }
  } finally {
    await hog?.stop();
    await session.release();
  }
  return {
    model,
    busy,
    niceness: niceProblem ? `default (${niceProblem})` : '-10',
    bySize,
    oracleErrorP99Pct: Math.max(...bySize.map((s) => s.oracleErrorP99Pct)),
  };
}

/** Measures in a child process (its own niceness); the caller's process is left as it was. */
export function measureRunJitter(model: string, busy: boolean): RunJitter {
  const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), model, busy ? 'busy' : 'quiet'], { encoding: 'utf8', timeout: 120_000 });
  if (run.status !== 0) throw new Error(`run-jitter ${model} failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as RunJitter;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [model, mode] = process.argv.slice(2);
  process.stdout.write(`${JSON.stringify(await measure(model!, mode === 'busy'))}\n`);
}
