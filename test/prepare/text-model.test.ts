/**
 * The bundled text classifier (zoo/spam-transformer, packaged as models/spam-transformer):
 * multi-tensor cuts after every encoder layer, segment chains equal to the model at variable
 * sequence lengths, padding that changes nothing, ramps whose exits stay within the accuracy
 * budget, and `prepare` itself on a text dataset.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeModel } from '../../onnx/onnx-proto.js';
import { preparePackage, DEFAULT_PREPARE_OPTIONS } from '../../prepare/prepare-package.js';
import { findRampSites } from '../../prepare/ramp-sites.js';
import { SegmentChain } from '../../onnx/segment-chain.js';
import { segmentModel } from '../../onnx/segmenter.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { readTextCorpus } from '../../text/text-corpus.js';
import { padTokenRows } from '../../text/token-tensors.js';
import { WordTokenizer } from '../../text/word-tokenizer.js';

const MODEL = 'spam-transformer';
const entry = loadModelEntry('models', MODEL);
const ee = entry.manifest.earlyExit!;
const tokenizer = WordTokenizer.load(join('models', MODEL, 'tokenizer.json'));
const corpus = readTextCorpus('datasets/spam-assassin/messages.jsonl.gz');
const scratch = mkdtempSync(join(tmpdir(), 'escapement-text-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Token feeds for texts [from, from+n), padded to `length` (default: the longest row). */
function feeds(from: number, n: number, length?: number): Record<string, ort.Tensor> {
  const rows = corpus.texts.slice(from, from + n).map((t) => tokenizer.encode(t).ids);
  const padded = padTokenRows(rows, length ?? Math.max(...rows.map((r) => r.length)));
  const shape = [n, padded.length];
  return { input_ids: new ort.Tensor('int64', padded.ids, shape), attention_mask: new ort.Tensor('int64', padded.mask, shape) };
}

function maxAbsDiff(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  expect(x.length).toBe(y.length);
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  return d;
}

describe('the bundled spam-transformer package', () => {
  it('is a text package: token inputs of any length, buckets, its tokenizer, the zoo tokenizer', () => {
    expect(entry.manifest.inputs.map((i) => [i.name, i.dtype, i.shape])).toEqual([
      ['input_ids', 'int64', [-1, -1]],
      ['attention_mask', 'int64', [-1, -1]],
    ]);
    expect(entry.manifest.sequence!.buckets.at(-1)).toBe(tokenizer.maxTokens);
    expect(readFileSync(join('models', MODEL, 'tokenizer.json'), 'utf8')).toBe(readFileSync('zoo/spam-transformer/tokenizer.json', 'utf8'));
  });

  it('has a site after every encoder layer, each cut carrying the hidden state and the mask bias', () => {
    const producers = ee.sites.map((s) => s.producer);
    for (let layer = 0; layer < 4; layer++) expect(producers).toContain(`/layers.${layer}/norm2/LayerNormalization`);
    for (const site of ee.sites) {
      expect(site.kind).toBe('sequence');
      expect(site.shape).toEqual([-1, -1, 128]);
    }
    // Until the last attention has run, every cut also carries the attention-mask bias [N,1,1,T];
    // after it (layer 3's feed-forward block) nothing needs the mask any more.
    for (const site of ee.sites.filter((s) => !s.producer.startsWith('/layers.3/'))) {
      expect(site.sideTensors).toHaveLength(1);
      expect(site.sideTensorTypes![site.sideTensors[0]!]!.shape).toEqual([-1, 1, 1, -1]);
    }
    for (const site of ee.sites.filter((s) => s.producer.startsWith('/layers.3/'))) expect(site.sideTensors).toEqual([]);
  });

  it('cuts the ONNX model into a chain that reproduces it at several sequence lengths and batch sizes', async () => {
    const model = decodeModel(readFileSync('zoo/spam-transformer/original.onnx'));
    const probe = Object.entries(feeds(0, 2)).map(([name, t]) => ({ name, shape: [...t.dims], data: t.data as BigInt64Array }));
    const { sites, types } = await findRampSites(model, probe, 'input_ids');
    expect(sites.length).toBeGreaterThanOrEqual(4);
    const chain = await SegmentChain.create(segmentModel(model, sites, types, 'input_ids'));
    const whole = await ort.InferenceSession.create('zoo/spam-transformer/original.onnx', { intraOpNumThreads: 1, logSeverityLevel: 3 });
    try {
      for (const [from, n, length] of [
        [0, 1, undefined],
        [1, 3, 16],
        [4, 8, 64],
        [12, 16, 128],
      ] as const) {
        const f =
          length === undefined
            ? feeds(from, n)
            : feeds(from, n, Math.max(length, ...corpus.texts.slice(from, from + n).map((t) => Math.min(tokenizer.encode(t).ids.length, 128))));
        const a = (await whole.run(f)).logits!;
        const b = (await chain.run(f)).logits!;
        expect(maxAbsDiff(a, b)).toBeLessThan(1e-3);
      }
    } finally {
      await chain.release();
      await whole.release();
    }
  });

  it('gives a text the same logits alone at its own length and padded in a batch to 128', async () => {
    const whole = await ort.InferenceSession.create(entry.onnxPath, { intraOpNumThreads: 1, logSeverityLevel: 3 });
    try {
      const batch = (await whole.run(feeds(100, 8, 128))).logits!.data as Float32Array;
      for (let i = 0; i < 8; i++) {
        const alone = (await whole.run(feeds(100 + i, 1))).logits!.data as Float32Array;
        for (let c = 0; c < 2; c++) expect(Math.abs(alone[c]! - batch[i * 2 + c]!)).toBeLessThan(1e-3);
      }
    } finally {
      await whole.release();
    }
  });

  it('answers at its chosen ramps within the 1 % accuracy budget on served texts it never trained on', async () => {
    expect(ee.chosenRamps.length).toBeGreaterThan(0);
    for (const id of ee.chosenRamps) expect(ee.ramps.find((r) => r.siteId === id)!.validation.agreementAtThreshold).toBeGreaterThanOrEqual(0.99);
    // Run the package's own segments and heads on 600 served texts with the initial thresholds.
    const segments = await Promise.all(
      ee.segments.map((s) => ort.InferenceSession.create(join('models', MODEL, s.file), { intraOpNumThreads: 1, logSeverityLevel: 3 })),
    );
    const heads = new Map(
      await Promise.all(
        ee.chosenRamps.map(
          async (id) =>
            [
              id,
              await ort.InferenceSession.create(join('models', MODEL, ee.ramps.find((r) => r.siteId === id)!.file), {
                intraOpNumThreads: 1,
                logSeverityLevel: 3,
              }),
            ] as const,
        ),
      ),
    );
    let agree = 0;
    let exited = 0;
    const numTexts = 600;
    try {
      for (let from = ee.dataset.serveStart; from < ee.dataset.serveStart + numTexts; from += 50) {
        const env: Record<string, ort.Tensor> = feeds(from, 50, 128);
        const answer = new Array<number>(50).fill(-1);
        for (const [i, s] of ee.segments.entries()) {
          Object.assign(env, await segments[i]!.run(Object.fromEntries(s.inputs.map((x) => [x, env[x]!]))));
          const site = s.endsAtSite;
          if (site === null) continue;
          const tensor = ee.sites.find((x) => x.id === site)!.tensor;
          const ramp = ee.ramps.find((r) => r.siteId === site)!;
          const probs = (await heads.get(site)!.run({ [tensor]: env[tensor]! }))[ramp.outputName]!.data as Float32Array;
          for (let r = 0; r < 50; r++) {
            const best = probs[r * 2 + 1]! > probs[r * 2]! ? 1 : 0;
            if (answer[r] === -1 && probs[r * 2 + best]! >= ee.initialThresholds[site]!) answer[r] = best;
          }
        }
        const logits = env[ee.finalOutput]!.data as Float32Array;
        for (let r = 0; r < 50; r++) {
          const full = logits[r * 2 + 1]! > logits[r * 2]! ? 1 : 0;
          if (answer[r] !== -1) exited++;
          if ((answer[r] === -1 ? full : answer[r]) === full) agree++;
        }
      }
    } finally {
      for (const s of [...segments, ...heads.values()]) await s.release();
    }
    expect(exited / numTexts).toBeGreaterThan(0.2);
    // thresholds were set for ≥ 99 % agreement on 266 validation texts; allow sampling noise
    expect(agree / numTexts).toBeGreaterThanOrEqual(0.98);
  });

  it('is what `prepare` makes of a text dataset: token inputs, sequence buckets, the tokenizer copied', async () => {
    const data = join(scratch, 'spam-small');
    mkdirSync(data);
    const lines = corpus.texts.slice(0, 1000).map((text, i) => JSON.stringify({ label: corpus.labels[i], text }));
    writeFileSync(join(data, 'messages.jsonl.gz'), gzipSync(`${lines.join('\n')}\n`));
    writeFileSync(join(data, 'dataset.json'), JSON.stringify({ name: 'spam-small', format: 'text', corpus: 'messages.jsonl.gz' }));
    const out = join(scratch, 'models', 'spam-small');
    const report = await preparePackage({
      ...DEFAULT_PREPARE_OPTIONS,
      modelPath: 'zoo/spam-transformer/original.onnx',
      datasetPath: data,
      tokenizerPath: 'zoo/spam-transformer/tokenizer.json',
      sequenceBuckets: [32, 64],
      outDir: out,
      name: 'spam-small',
      batchSizes: [1, 4],
      referenceBatchSize: 4,
      profile: { batchSizes: [1, 4], numRuns: 3, numWarmup: 1, maxMsPerSize: 50 },
      onProgress: () => {},
    });
    expect(report.verification.predictionAgreement).toBe(1);
    const made = loadModelEntry(join(scratch, 'models'), 'spam-small').manifest;
    expect(made.sequence).toEqual({ buckets: [32, 64, 128], tokenizer: 'tokenizer.json' });
    expect(made.inputs.map((i) => i.dtype)).toEqual(['int64', 'int64']);
    expect(made.earlyExit!.sites.length).toBe(ee.sites.length);
    // The chain runs at the optimisation level measured faster on it.
    const compile = made.earlyExit!.compile;
    const total = (level: string) => Object.values(compile.chainMsByLevel![level]!).reduce((a, b) => a + b, 0);
    expect(Object.keys(compile.chainMsByLevel!).sort()).toEqual(['all', 'basic']);
    expect(total(compile.chainOptimizationLevel!)).toBe(Math.min(total('all'), total('basic')));
    await expect(
      preparePackage({
        ...DEFAULT_PREPARE_OPTIONS,
        modelPath: 'zoo/spam-transformer/original.onnx',
        datasetPath: data,
        outDir: join(scratch, 'x'),
        name: 'x',
        onProgress: () => {},
      }),
    ).rejects.toThrow(/needs --tokenizer/);
  });
});
