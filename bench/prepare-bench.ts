/**
 * `npm run bench:prepare`: prepares every zoo model (two CNNs and the text classifier) from scratch and reports how long it took, the
 * sites found, each ramp's accuracy and its agreement / exit fraction at the threshold that keeps
 * agreement ≥ 99 %, and the cost of running the model as a chain of segments (chain vs whole
 * model, interleaved in the same run, at batch 1 and 16). Prints a table and writes
 * bench/results/prepare.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { formatTable } from '../client/latency-summary.js';
import { loadDataset } from '../prepare/dataset.js';
import { datasetFeeds } from '../prepare/dataset-feeds.js';
import { WordTokenizer } from '../text/word-tokenizer.js';
import { dataInputNames, makeBatchDynamic } from '../prepare/batch-dimension.js';
import { decodeModel, encodeModel } from '../prepare/onnx-proto.js';
import { DEFAULT_PREPARE_OPTIONS, preparePackage } from '../prepare/prepare-package.js';
import { findRampSites } from '../prepare/ramp-sites.js';
import { SegmentChain } from '../prepare/segment-chain.js';
import { segmentModel } from '../prepare/segmenter.js';
import { monotonicNowNs } from '../shared/clock.js';
import { readFileSync } from 'node:fs';
import { sessionOptions } from '../worker/session-options.js';

const ZOO: { name: string; model: string; dataset: string; tokenizer?: string }[] = [
  { name: 'fmnist-resnet', model: 'zoo/fmnist-resnet/original.onnx', dataset: 'datasets/fashion-mnist-test' },
  { name: 'mnist-cnn', model: 'zoo/mnist-cnn/original.onnx', dataset: 'datasets/mnist-digits' },
  { name: 'spam-transformer', model: 'zoo/spam-transformer/original.onnx', dataset: 'datasets/spam-assassin', tokenizer: 'zoo/spam-transformer/tokenizer.json' },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/**
 * Whole model vs chain, alternating run by run so both see the same machine state. The chain runs
 * at the optimisation level its package chose; text models at their longest sequence.
 */
async function chainOverheadPct(zoo: (typeof ZOO)[number], siteIds: number[] | 'all', batchSize: number, chainLevel: 'basic' | 'extended' | 'all'): Promise<{ wholeMs: number; chainMs: number; pct: number; numSegments: number }> {
  const model = decodeModel(readFileSync(zoo.model));
  makeBatchDynamic(model);
  const tokenizer = zoo.tokenizer ? WordTokenizer.load(zoo.tokenizer) : undefined;
  const dataset = loadDataset(zoo.dataset, tokenizer ? { tokenizer } : {});
  const inputName = tokenizer ? tokenizer.file.inputNames.ids : dataInputNames(model)[0]!;
  if (!tokenizer) dataset.sampleShape = (model.graph!.input ?? []).find((i) => i.name === inputName)!.type!.tensorType!.shape!.dim!.slice(1).map((d) => Number(d.dimValue));
  const feeds = (b: number) => datasetFeeds(dataset, inputName, 0, b);
  const probe = Object.entries(feeds(2)).map(([name, t]) => ({ name, shape: [...t.dims], data: t.data as Float32Array | BigInt64Array }));
  const { sites, types } = await findRampSites(model, probe, inputName);
  const chosen = siteIds === 'all' ? sites : sites.filter((s) => siteIds.includes(s.id));
  const options = sessionOptions({ device: 'cpu', intraOpNumThreads: 1 });
  const chain = await SegmentChain.create(segmentModel(model, chosen, types, inputName), { ...options, graphOptimizationLevel: chainLevel });
  const whole = await ort.InferenceSession.create(encodeModel(model), options);
  const wholeMs: number[] = [];
  const chainMs: number[] = [];
  const input = feeds(batchSize);
  for (let i = 0; i < 10; i++) {
    await whole.run(input);
    await chain.run(input);
  }
  for (let i = 0; i < 100; i++) {
    let t0 = monotonicNowNs();
    await whole.run(input);
    wholeMs.push((monotonicNowNs() - t0) / 1e6);
    t0 = monotonicNowNs();
    await chain.run(input);
    chainMs.push((monotonicNowNs() - t0) / 1e6);
  }
  await chain.release();
  await whole.release();
  const w = median(wholeMs);
  const c = median(chainMs);
  return { wholeMs: w, chainMs: c, pct: (100 * (c - w)) / w, numSegments: chosen.length + 1 };
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'escapement-bench-prepare-'));
  const results = [];
  try {
    for (const zoo of ZOO) {
      process.stderr.write(`[bench:prepare] preparing ${zoo.name} ...\n`);
      const began = monotonicNowNs();
      const report = await preparePackage({ ...DEFAULT_PREPARE_OPTIONS, modelPath: zoo.model, datasetPath: zoo.dataset, ...(zoo.tokenizer ? { tokenizerPath: zoo.tokenizer } : {}), outDir: join(scratch, zoo.name), name: zoo.name, onProgress: () => undefined });
      const prepareSeconds = (monotonicNowNs() - began) / 1e9;
      const chosen = report.selection.chosen;
      process.stderr.write(`[bench:prepare] segmenting overhead of ${zoo.name} ...\n`);
      const level = report.manifest.earlyExit!.compile.chainOptimizationLevel ?? 'all';
      const chosenB1 = await chainOverheadPct(zoo, chosen, 1, level);
      const chosenB16 = await chainOverheadPct(zoo, chosen, 16, level);
      const allB1 = await chainOverheadPct(zoo, 'all', 1, level);
      const allB16 = await chainOverheadPct(zoo, 'all', 16, level);
      results.push({
        name: zoo.name,
        numSites: report.numSites,
        prepareSeconds,
        chosenRamps: chosen,
        predictedSavingPct: (100 * report.selection.savingMs) / report.wholeMsAtReference,
        ramps: report.ramps.map((r) => ({
          siteId: r.siteId,
          at: r.producer,
          shape: r.shape,
          trainAccuracy: r.trainAccuracy,
          accuracy: r.validationAccuracy,
          agreement: r.agreement,
          thresholdAt99: r.threshold,
          agreementAt99: r.agreementAtThreshold,
          exitFractionAt99: r.exitFraction,
          costMs: r.costMsAtReference,
          chosen: r.chosen,
        })),
        chainOptimizationLevel: level,
        chainOverheadPctBatch1: chosenB1.pct,
        chainOverheadPctBatch16: chosenB16.pct,
        allSitesChainOverheadPctBatch1: allB1.pct,
        allSitesChainOverheadPctBatch16: allB16.pct,
        wholeMsBatch1: chosenB1.wholeMs,
        wholeMsBatch16: chosenB16.wholeMs,
        numSegmentsChosen: chosenB1.numSegments,
        numSegmentsAll: allB1.numSegments,
      });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  for (const m of results) {
    process.stdout.write(`\n${m.name}: ${m.numSites} sites, prepared in ${m.prepareSeconds.toFixed(1)} s, chosen ramps [${m.chosenRamps.join(', ')}], predicted saving ${m.predictedSavingPct.toFixed(1)} %\n`);
    process.stdout.write(
      `${formatTable(m.ramps.map((r) => ({ site: r.siteId, at: r.at, 'acc %': r.accuracy === undefined ? '-' : (100 * r.accuracy).toFixed(1), 'τ@99': r.thresholdAt99 > 1 ? 'off' : r.thresholdAt99.toFixed(3), 'agree@99 %': (100 * r.agreementAt99).toFixed(2), 'exit@99 %': (100 * r.exitFractionAt99).toFixed(1), 'cost ms': r.costMs.toFixed(3), chosen: r.chosen ? 'yes' : '' })))}\n`,
    );
    process.stdout.write(
      `segmenting overhead (chain at '${m.chainOptimizationLevel}' vs whole, interleaved): chosen ramps (${m.numSegmentsChosen} segments) ${m.chainOverheadPctBatch1.toFixed(1)} % at batch 1, ${m.chainOverheadPctBatch16.toFixed(1)} % at batch 16; every site (${m.numSegmentsAll} segments) ${m.allSitesChainOverheadPctBatch1.toFixed(1)} % / ${m.allSitesChainOverheadPctBatch16.toFixed(1)} %\n`,
    );
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/prepare.json', `${JSON.stringify({ models: results }, null, 2)}\n`);
  process.stdout.write('\nwrote bench/results/prepare.json\n');
}

await main();
