import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { BERT_BASE, bertShapedEncoder, parameterCount } from '../../bench/bert-shaped-encoder.js';
import { encodeModel } from '../../onnx/onnx-proto.js';
import { findRampSites } from '../../prepare/ramp-sites.js';
import { SegmentChain } from '../../onnx/segment-chain.js';
import { segmentModel } from '../../onnx/segmenter.js';

const TINY = { layers: 2, hidden: 32, heads: 4, feedForward: 64, vocab: 500, maxTokens: 16, classes: 3 };

function tokens(rows: number[][], length: number) {
  const ids = new BigInt64Array(rows.length * length);
  const mask = new BigInt64Array(rows.length * length);
  rows.forEach((row, r) =>
    row.forEach((id, t) => {
      ids[r * length + t] = BigInt(id);
      mask[r * length + t] = 1n;
    }),
  );
  return { input_ids: new ort.Tensor('int64', ids, [rows.length, length]), attention_mask: new ort.Tensor('int64', mask, [rows.length, length]) };
}

describe('the BERT-shaped encoder the benchmarks write', () => {
  it("has BERT-base's size at the BERT-base shape (counted, not built)", () => {
    const { layers, hidden, feedForward, vocab, maxTokens, classes } = BERT_BASE;
    const perLayer = 4 * (hidden * hidden + hidden) + 2 * hidden * feedForward + feedForward + hidden + 4 * hidden;
    const expected = (vocab + maxTokens + 1) * hidden + 2 * hidden + layers * perLayer + hidden * hidden + hidden + hidden * classes + classes;
    expect(expected).toBeGreaterThan(105e6); // BERT-base: 110 M with its 512 positions
    expect(expected).toBeLessThan(112e6);
    expect(parameterCount(bertShapedEncoder({ ...TINY }))).toBe(
      (TINY.vocab + TINY.maxTokens + 1) * 32 + 2 * 32 + 2 * (4 * (32 * 32 + 32) + 2 * 32 * 64 + 64 + 32 + 4 * 32) + 32 * 32 + 32 + 32 * 3 + 3,
    );
  });

  it('runs in onnxruntime, masks padding out, and is the same model for the same seed', async () => {
    const bytes = encodeModel(bertShapedEncoder(TINY, 7));
    expect(Buffer.from(encodeModel(bertShapedEncoder(TINY, 7))).equals(Buffer.from(bytes))).toBe(true);
    expect(Buffer.from(encodeModel(bertShapedEncoder(TINY, 8))).equals(Buffer.from(bytes))).toBe(false);
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3 });
    try {
      const alone = (await session.run(tokens([[5, 9, 2]], 3))).logits!;
      expect(alone.dims).toEqual([1, 3]);
      // the same text padded to 8 in a batch with a longer one gives the same logits
      const padded = (
        await session.run(
          tokens(
            [
              [5, 9, 2],
              [1, 2, 3, 4, 5, 6, 7, 8],
            ],
            8,
          ),
        )
      ).logits!;
      for (let c = 0; c < 3; c++) expect((padded.data as Float32Array)[c]!).toBeCloseTo((alone.data as Float32Array)[c]!, 4);
      expect(Array.from(padded.data as Float32Array).every(Number.isFinite)).toBe(true);
    } finally {
      await session.release();
    }
  });

  it('gives prepare a site after every attention and feed-forward block, and a chain that reproduces it', async () => {
    const model = bertShapedEncoder(TINY);
    const feeds = tokens(
      [
        [3, 4, 5, 6],
        [7, 8, 0, 0],
      ],
      4,
    );
    const probe = Object.entries(feeds).map(([name, t]) => ({ name, shape: [...t.dims], data: t.data as BigInt64Array }));
    const { sites, types } = await findRampSites(model, probe, 'input_ids');
    const producers = sites.map((s) => s.producerName);
    for (let l = 0; l < TINY.layers; l++) expect(producers).toEqual(expect.arrayContaining([`layer${l}.attention.norm`, `layer${l}.ffn.norm`]));
    for (const site of sites) expect(site.kind).toBe('sequence');
    const chain = await SegmentChain.create(segmentModel(model, sites, types, 'input_ids'));
    const whole = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1, logSeverityLevel: 3 });
    try {
      const a = (await whole.run(feeds)).logits!.data as Float32Array;
      const b = (await chain.run(feeds)).logits!.data as Float32Array;
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-4);
    } finally {
      await chain.release();
      await whole.release();
    }
  });
});
