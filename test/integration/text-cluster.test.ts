/**
 * The text classifier end to end: a real controller with --exit-mode release through the chain (every batch), two onnxruntime
 * workers running the bundled spam-transformer package, and a client that tokenizes e-mails of
 * every length itself; the controller pads each batch to a sequence bucket.
 */
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaks } from '../support/leak-check.js';
import { EscapementClient, type InferResponse } from '../../client/escapement-client.js';
import { runOpenLoop } from '../../loadgen/open-loop.js';
import { packageTokenizer, textInputs } from '../../client/text-inputs.js';
import { cliEntryPath, LocalCluster } from '../../cluster/local-cluster.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { asFloat32, bytesOf } from '../../shared/tensor.js';
import { readTextCorpus } from '../../text/text-corpus.js';

const MODEL = 'spam-transformer';
const entry = loadModelEntry('models', MODEL);
const ee = entry.manifest.earlyExit!;
const tokenizer = packageTokenizer(entry)!;
const corpus = readTextCorpus('datasets/spam-assassin/messages.jsonl.gz');
const NUM = 120;
const first = ee.dataset.serveStart;
// Served texts, every fourth one cut to a few words so that several buckets are in play.
const textOf = (i: number) =>
  i % 4 === 0
    ? corpus.texts[first + i]!.split(' ')
        .slice(0, 3 + (i % 40))
        .join(' ')
    : corpus.texts[first + i]!;

describe('a text model served with early exits', () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  let responses: InferResponse[];
  checkLeaks(() => [cluster]);
  const reference: number[][] = [];

  beforeAll(async () => {
    // The plain model's logits for each text alone, at its own length.
    const session = await ort.InferenceSession.create(entry.onnxPath, { intraOpNumThreads: 1, logSeverityLevel: 3 });
    for (let i = 0; i < NUM; i++) {
      const feeds = Object.fromEntries(
        textInputs(tokenizer, textOf(i)).map((t) => [
          t.name,
          new ort.Tensor('int64', new BigInt64Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)), t.shape),
        ]),
      );
      reference.push(Array.from((await session.run(feeds)).logits!.data as Float32Array));
    }
    await session.release();
    cluster = await LocalCluster.start({
      numWorkers: 2,
      modelDir: 'models',
      preload: [MODEL],
      controllerArgs: ['--exit-mode', 'release', '--no-fused-release'],
    });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
    responses = (
      await runOpenLoop(client, { model: MODEL, numRequests: NUM, ratePerSec: 150, sloMs: 2000, seed: 1, inputsFor: (i) => textInputs(tokenizer, textOf(i)) })
    ).responses;
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it('answers every request exactly once, some early, batching texts of different lengths', () => {
    expect(responses.filter((r) => r !== undefined)).toHaveLength(NUM);
    expect(new Set(responses.map((r) => r.requestId)).size).toBe(NUM);
    expect(responses.map((r) => r.status)).toEqual(Array(NUM).fill('OK'));
    expect(responses.filter((r) => r.early === true).length).toBeGreaterThan(NUM * 0.2);
    expect(responses.filter((r) => r.early === false).length).toBeGreaterThan(0);
  });

  it('returns, for texts that ran to the end, the logits of the text alone (padding changes nothing)', () => {
    let agree = 0;
    responses.forEach((r, i) => {
      const ref = reference[i]!;
      const full = ref[1]! > ref[0]! ? 1 : 0;
      if (r.early) {
        if (r.prediction === full) agree++;
        return;
      }
      const logits = Array.from(asFloat32(r.outputs[0]!.data));
      expect(Math.abs(logits[0]! - ref[0]!)).toBeLessThan(1e-3);
      expect(Math.abs(logits[1]! - ref[1]!)).toBeLessThan(1e-3);
      agree++;
    });
    expect(agree / NUM).toBeGreaterThan(0.95);
  });

  it('shows duration estimates per sequence bucket, longer texts costing more', async () => {
    const status = await client.status();
    for (const worker of status.workers) {
      const estimates = worker.estimatesMs[MODEL]!;
      expect(Object.keys(estimates)).toEqual(['T16', 'T32', 'T64', 'T128']);
      const [shortest, longest] = [estimates.T16, estimates.T128];
      if (typeof shortest !== 'object' || typeof longest !== 'object') throw new Error('estimates are not per sequence bucket');
      expect(longest['16']).toBeGreaterThan(shortest['16']!);
    }
  });

  it('rejects texts longer than the longest bucket and mismatched ids/mask with INVALID_INPUT', async () => {
    const long = Array.from({ length: tokenizer.maxTokens + 1 }, () => 5n);
    const tooLong = [
      { name: 'input_ids', dtype: 'int64' as const, shape: [1, long.length], data: bytesOf(BigInt64Array.from(long)) },
      { name: 'attention_mask', dtype: 'int64' as const, shape: [1, long.length], data: bytesOf(new BigInt64Array(long.length).fill(1n)) },
    ];
    const r1 = await client.submit(MODEL, tooLong, { sloMs: 1000 });
    expect(r1).toMatchObject({ status: 'REJECTED', code: ErrorCode.INVALID_INPUT });
    expect(r1.message).toMatch(/129 tokens/);
    const [ids] = textInputs(tokenizer, 'hello there friend');
    const mask = { name: 'attention_mask', dtype: 'int64' as const, shape: [1, 2], data: bytesOf(new BigInt64Array(2).fill(1n)) };
    const r2 = await client.submit(MODEL, [ids!, mask], { sloMs: 1000 });
    expect(r2).toMatchObject({ status: 'REJECTED', code: ErrorCode.INVALID_INPUT });
  });

  it('classifies a text given on the command line (`escapement submit --text`)', () => {
    const run = spawnSync(
      process.execPath,
      [
        cliEntryPath(),
        'submit',
        '--controller',
        cluster.clientUrl,
        '--model',
        MODEL,
        '--slo-ms',
        '2000',
        '--text',
        'Re: the build is green again, merging the patch now',
        '--json',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { summary: { byStatus: Record<string, number> }; responses: { status: string; outputs: { shape: number[] }[] }[] };
    expect(out.responses[0]!.status).toBe('OK');
    expect(out.responses[0]!.outputs[0]!.shape).toEqual([1, 2]);
    const noText = spawnSync(process.execPath, [cliEntryPath(), 'submit', '--controller', cluster.clientUrl, '--model', MODEL], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(noText.status).not.toBe(0);
    expect(noText.stderr).toMatch(/text model: give --text/);
  });
});
