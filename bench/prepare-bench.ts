/**
 * `npm run bench:prepare`: prepares every zoo model (two CNNs and the text classifier) from scratch and reports how long it took, the
 * sites found, each ramp's accuracy and its agreement / exit fraction at the threshold that keeps
 * agreement ≥ 99 %, and the cost of running the model as a chain of segments (chain vs whole
 * model, interleaved in the same run, at batch 1 and 16); then two ImageNet-shaped models this
 * repository did not make (`foreignModels`: accepted, seconds, peak resident memory, sites, chain
 * == model; see FOREIGN below), and a BERT-base-shaped encoder on 1,000 e-mails, prepared and then served
 * (see bertRun). Prints tables and writes bench/results/prepare.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadDataset } from '../prepare/dataset.js';
import { datasetFeeds } from '../prepare/dataset-feeds.js';
import { WordTokenizer } from '../text/word-tokenizer.js';
import { dataInputNames, makeBatchDynamic } from '../prepare/batch-dimension.js';
import { decodeModel, encodeModel } from '../onnx/onnx-proto.js';
import { DEFAULT_PREPARE_OPTIONS, preparePackage } from '../prepare/prepare-package.js';
import { findRampSites } from '../prepare/ramp-sites.js';
import { SegmentChain } from '../onnx/segment-chain.js';
import { segmentModel } from '../onnx/segmenter.js';
import { monotonicNowNs } from '../shared/clock.js';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { writeNpy } from '../shared/npy-writer.js';
import { seededRandom } from '../shared/seeded-random.js';
import { sessionOptions } from '../onnx/session-options.js';
import { gunzipSync, gzipSync } from 'node:zlib';
import { EscapementClient } from '../client/escapement-client.js';
import { formatTable, percentilesMs } from '../loadgen/latency-summary.js';
import { packageTokenizer, textInputs } from '../client/text-inputs.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { sloFor } from '../loadgen/slo-rule.js';
import { loadModelEntry } from '../shared/model-manifest.js';
import { BERT_BASE, bertShapedEncoder, parameterCount } from './bert-shaped-encoder.js';

const ZOO: { name: string; model: string; dataset: string; tokenizer?: string }[] = [
  { name: 'fmnist-resnet', model: 'zoo/fmnist-resnet/original.onnx', dataset: 'datasets/fashion-mnist-test' },
  { name: 'mnist-cnn', model: 'zoo/mnist-cnn/original.onnx', dataset: 'datasets/mnist-digits' },
  {
    name: 'spam-transformer',
    model: 'zoo/spam-transformer/original.onnx',
    dataset: 'datasets/spam-assassin',
    tokenizer: 'zoo/spam-transformer/tokenizer.json',
  },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/**
 * Whole model vs chain, alternating run by run so both see the same machine state. The chain runs
 * at the optimisation level its package chose; text models at their longest sequence.
 */
async function chainOverheadPct(
  zoo: (typeof ZOO)[number],
  siteIds: number[] | 'all',
  batchSize: number,
  chainLevel: 'basic' | 'extended' | 'all',
): Promise<{ wholeMs: number; chainMs: number; pct: number; numSegments: number }> {
  const model = decodeModel(readFileSync(zoo.model));
  makeBatchDynamic(model);
  const tokenizer = zoo.tokenizer ? WordTokenizer.load(zoo.tokenizer) : undefined;
  const dataset = loadDataset(zoo.dataset, tokenizer ? { tokenizer } : {});
  const inputName = tokenizer ? tokenizer.file.inputNames.ids : dataInputNames(model)[0]!;
  if (!tokenizer)
    dataset.sampleShape = (model.graph!.input ?? [])
      .find((i) => i.name === inputName)!
      .type!.tensorType!.shape!.dim!.slice(1)
      .map((d) => Number(d.dimValue));
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

/**
 * Models this repository did not make, at ImageNet shape: the ONNX test suite's ResNet-50 and
 * SqueezeNet graphs (untrained, 1,000 classes; test/fixtures/onnx-light), prepared on random
 * 224×224 images (random labels) by `escapement prepare` in a process of its own, so that its
 * peak memory is its own (PREPARE_FOREIGN_SAMPLES, default 1,000; 0 skips them).
 */
const FOREIGN_SAMPLES = Number(process.env.PREPARE_FOREIGN_SAMPLES ?? 1000);

/** PREPARE_MODELS=name,name runs only those (zoo names, foreign names, bert-base-shaped); default all. */
const ONLY = process.env.PREPARE_MODELS?.split(',').filter(Boolean);
const wanted = (name: string) => ONLY === undefined || ONLY.includes(name);
const FOREIGN = [
  { name: 'resnet50-imagenet-shaped', model: 'test/fixtures/onnx-light/light_resnet50.onnx' },
  { name: 'squeezenet-imagenet-shaped', model: 'test/fixtures/onnx-light/light_squeezenet.onnx' },
];

interface ForeignRun {
  name: string;
  accepted: boolean;
  seconds: number;
  peakRssMb?: number | undefined;
  sites?: number | undefined;
  chainEqualsModel: boolean;
}

function foreignModelRuns(): ForeignRun[] {
  const scratch = mkdtempSync(join(tmpdir(), 'escapement-bench-foreign-'));
  try {
    const n = FOREIGN_SAMPLES;
    const size = 3 * 224 * 224;
    const pixels = new Float32Array(n * size);
    const random = seededRandom(5);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(256 * random());
    writeNpy(join(scratch, 'inputs.npy'), pixels, [n, 3, 224, 224]);
    writeNpy(
      join(scratch, 'labels.npy'),
      Int32Array.from({ length: n }, (_, i) => (i * 7919) % 1000),
      [n],
    );
    writeFileSync(join(scratch, 'dataset.json'), JSON.stringify({ format: 'npy', inputs: 'inputs.npy', labels: 'labels.npy', name: 'imagenet-shaped-random' }));
    return FOREIGN.filter((m) => wanted(m.name)).map((m) => {
      process.stderr.write(`[bench:prepare] preparing ${m.name} (${n} samples; minutes) ...\n`);
      const began = monotonicNowNs();
      const run = spawnSync(
        'bin/escapement',
        ['prepare', '--model', m.model, '--dataset', scratch, '--out', join(scratch, m.name), '--bootstrap-fraction', '1', '--json'],
        { encoding: 'utf8', timeout: 1_800_000, maxBuffer: 64 * 2 ** 20 },
      );
      const seconds = (monotonicNowNs() - began) / 1e9;
      const report =
        run.status === 0
          ? (JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
              numSites: number;
              peakRssMb?: number;
              verification: { maxAbsDiff: number; predictionAgreement: number };
            })
          : undefined;
      if (!report) process.stderr.write(`[bench:prepare] ${m.name} was refused: ${run.stderr.slice(-2000)}\n`);
      return {
        name: m.name,
        accepted: report !== undefined,
        seconds,
        peakRssMb: report?.peakRssMb,
        sites: report?.numSites,
        chainEqualsModel: report !== undefined && report.verification.predictionAgreement === 1 && report.verification.maxAbsDiff <= 1e-3,
      };
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The real-size text workload: a BERT-base-shaped encoder (12 layers, hidden 768, 12 heads,
 * sequence 128; untrained, bench/bert-shaped-encoder.ts) prepared on the first FOREIGN_SAMPLES
 * e-mails of datasets/spam-assassin with the bundled tokenizer (--bootstrap-fraction 1) by a
 * process of its own, then served by a controller and one worker: SERVED_REQUESTS e-mails from
 * the rest of the corpus, one every two batch-1 runs, with exits on (sequence heads, two input tensors, at that
 * size; untrained, the model answers every e-mail alike, so its first ramp answers them all).
 */
const SERVED_REQUESTS = 40;
const BERT_NAME = 'bert-base-shaped';

async function bertRun(): Promise<ForeignRun & { parameters: number; verifiedSamples?: number; served?: Awaited<ReturnType<typeof serveText>> }> {
  const scratch = mkdtempSync(join(tmpdir(), 'escapement-bench-bert-'));
  const name = BERT_NAME;
  try {
    process.stderr.write(`[bench:prepare] writing the ${name} encoder (110 M parameters) ...\n`);
    const model = bertShapedEncoder(BERT_BASE);
    const modelPath = join(scratch, 'bert.onnx');
    writeFileSync(modelPath, encodeModel(model));
    const parameters = parameterCount(model);
    const corpus = readFileSync('datasets/spam-assassin/messages.jsonl.gz');
    const lines = gunzipSync(corpus).toString('utf8').trim().split('\n');
    const datasetDir = join(scratch, 'dataset');
    mkdirSync(datasetDir);
    writeFileSync(join(datasetDir, 'messages.jsonl.gz'), gzipSync(`${lines.slice(0, FOREIGN_SAMPLES).join('\n')}\n`));
    writeFileSync(
      join(datasetDir, 'dataset.json'),
      JSON.stringify({ name: `spam-assassin-first-${FOREIGN_SAMPLES}`, format: 'text', corpus: 'messages.jsonl.gz' }),
    );
    process.stderr.write(`[bench:prepare] preparing ${name} (${FOREIGN_SAMPLES} samples; minutes) ...\n`);
    const began = monotonicNowNs();
    const packageDir = join(scratch, 'models', name);
    const run = spawnSync(
      'bin/escapement',
      [
        'prepare',
        '--model',
        modelPath,
        '--tokenizer',
        'zoo/spam-transformer/tokenizer.json',
        '--dataset',
        datasetDir,
        '--out',
        packageDir,
        '--bootstrap-fraction',
        '1',
        '--json',
      ],
      { encoding: 'utf8', timeout: 1_800_000, maxBuffer: 64 * 2 ** 20 },
    );
    const seconds = (monotonicNowNs() - began) / 1e9;
    const report =
      run.status === 0
        ? (JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
            numSites: number;
            peakRssMb?: number;
            verification: { maxAbsDiff: number; predictionAgreement: number; numSamples: number };
          })
        : undefined;
    if (!report) process.stderr.write(`[bench:prepare] ${name} was refused: ${run.stderr.slice(-2000)}\n`);
    const result = {
      name,
      parameters,
      accepted: report !== undefined,
      seconds,
      peakRssMb: report?.peakRssMb,
      sites: report?.numSites,
      chainEqualsModel: report !== undefined && report.verification.predictionAgreement === 1 && report.verification.maxAbsDiff <= 1e-3,
      verifiedSamples: report?.verification.numSamples,
    };
    if (!report) return result;
    process.stderr.write(`[bench:prepare] serving ${name}: a controller, one worker, ${SERVED_REQUESTS} requests ...\n`);
    return { ...result, served: await serveText(join(scratch, 'models'), name, lines.slice(FOREIGN_SAMPLES)) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function serveText(modelDir: string, name: string, messages: string[]) {
  const entry = loadModelEntry(modelDir, name);
  const tokenizer = packageTokenizer(entry)!;
  const sloMs = sloFor(entry, undefined, undefined);
  const startedNs = monotonicNowNs();
  const cluster = await LocalCluster.start({ numWorkers: 1, modelDir, preload: [name], controllerArgs: ['--exit-mode', 'compact'] });
  const client = await EscapementClient.connect(cluster.clientUrl);
  try {
    await cluster.waitUntilServing(client, [name], undefined, 300_000);
    const readySeconds = (monotonicNowNs() - startedNs) / 1e9;
    // One request every two batch-1 runs: a request answered at a ramp still has its batch run on
    // (the monitor sees every answer until its window fills), which the next must not wait for.
    const intervalMs = 2 * entry.manifest.earlyExit!.profile.wholeMs['1']!;
    const pending = [];
    for (let i = 0; i < SERVED_REQUESTS; i++) {
      const { text } = JSON.parse(messages[i % messages.length]!) as { text: string };
      pending.push(client.submit(name, textInputs(tokenizer, text), { sloMs }));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    const answers = await Promise.all(pending);
    const ok = answers.filter((r) => r.status === 'OK');
    const workerPid = cluster.workers.get('worker-0')?.child.pid;
    const workerPeakRss = workerPid === undefined ? undefined : /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${workerPid}/status`, 'utf8'));
    return {
      workerPeakRssMb: workerPeakRss ? Math.round(Number(workerPeakRss[1]) / 1024) : undefined,
      requests: answers.length,
      ok: ok.length,
      statuses: [...new Set(answers.map((r) => r.status))],
      sloMs,
      runMsBatch1: entry.manifest.earlyExit!.profile.wholeMs['1']!,
      readySeconds,
      exitFraction: ok.filter((r) => r.early).length / Math.max(1, ok.length),
      ...percentilesMs(ok.map((r) => r.clientLatencyMs)),
    };
  } finally {
    await client.close();
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'escapement-bench-prepare-'));
  const results = [];
  try {
    for (const zoo of ZOO.filter((z) => wanted(z.name))) {
      process.stderr.write(`[bench:prepare] preparing ${zoo.name} ...\n`);
      const began = monotonicNowNs();
      const report = await preparePackage({
        ...DEFAULT_PREPARE_OPTIONS,
        modelPath: zoo.model,
        datasetPath: zoo.dataset,
        ...(zoo.tokenizer ? { tokenizerPath: zoo.tokenizer } : {}),
        outDir: join(scratch, zoo.name),
        name: zoo.name,
        onProgress: () => undefined,
      });
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
    process.stdout.write(
      `\n${m.name}: ${m.numSites} sites, prepared in ${m.prepareSeconds.toFixed(1)} s, chosen ramps [${m.chosenRamps.join(', ')}], predicted saving ${m.predictedSavingPct.toFixed(1)} %\n`,
    );
    process.stdout.write(
      formatTable(
        m.ramps.map((r) => ({
          site: r.siteId,
          at: r.at,
          'acc %': r.accuracy === undefined ? '-' : (100 * r.accuracy).toFixed(1),
          'τ@99': r.thresholdAt99 > 1 ? 'off' : r.thresholdAt99.toFixed(3),
          'agree@99 %': (100 * r.agreementAt99).toFixed(2),
          'exit@99 %': (100 * r.exitFractionAt99).toFixed(1),
          'cost ms': r.costMs.toFixed(3),
          chosen: r.chosen ? 'yes' : '',
        })),
      ) + '\n',
    );
    process.stdout.write(
      `segmenting overhead (chain at '${m.chainOptimizationLevel}' vs whole, interleaved): chosen ramps (${m.numSegmentsChosen} segments) ${m.chainOverheadPctBatch1.toFixed(1)} % at batch 1, ` +
        `${m.chainOverheadPctBatch16.toFixed(1)} % at batch 16; every site (${m.numSegmentsAll} segments) ` +
        `${m.allSitesChainOverheadPctBatch1.toFixed(1)} % / ${m.allSitesChainOverheadPctBatch16.toFixed(1)} %\n`,
    );
  }
  const bert = FOREIGN_SAMPLES > 0 && wanted(BERT_NAME) ? await bertRun() : undefined;
  const foreignModels = FOREIGN_SAMPLES > 0 ? [...foreignModelRuns(), ...(bert ? [bert] : [])] : [];
  if (foreignModels.length > 0) {
    process.stdout.write(
      `\nforeign models (ImageNet-shaped on ${FOREIGN_SAMPLES} random 224x224 samples, BERT-base-shaped on ${FOREIGN_SAMPLES} ` +
        `e-mails at sequence 128; --bootstrap-fraction 1, each prepared by its own process; goal: <= 600 s, <= 4,096 MB):\n`,
    );
    process.stdout.write(
      formatTable(
        foreignModels.map((m) => ({
          model: m.name,
          accepted: m.accepted ? 'yes' : 'no',
          seconds: m.seconds.toFixed(1),
          'peak RSS MB': m.peakRssMb ?? '-',
          sites: m.sites ?? '-',
          'chain == model': m.chainEqualsModel ? 'yes' : 'no',
        })),
      ) + '\n',
    );
  }
  if (bert?.served) {
    const served = bert.served;
    process.stdout.write(
      `${bert.name} served (a controller with --exit-mode compact, one worker, one request every two ` +
        `batch-1 runs, SLO ${served.sloMs} ms = 10x its batch-1 run of ${served.runMsBatch1.toFixed(1)} ms): ` +
        `${served.ok}/${served.requests} OK, p50 ${served.p50Ms.toFixed(1)} ms, p99 ${served.p99Ms.toFixed(1)} ms, ` +
        `exits ${(100 * served.exitFraction).toFixed(0)} %, serving ${served.readySeconds.toFixed(1)} s after start\n`,
    );
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/prepare.json', `${JSON.stringify({ models: results, foreignModels }, null, 2)}\n`);
  process.stdout.write('\nwrote bench/results/prepare.json\n');
}

await main();
