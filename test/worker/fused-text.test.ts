/**
 * Release mode's fused model on the text package: the whole encoder with its sequence heads as
 * extra outputs (heads that read the mask and the site's hidden states) answers as the chain does.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadModelEntry } from '../../shared/model-manifest.js';
import type { Tensor } from '../../shared/tensor.js';
import { OrtExecutor } from '../../worker/ort-executor.js';

const MODEL = 'spam-transformer';
const entry = loadModelEntry('models', MODEL);
const ee = entry.manifest.earlyExit!;

/** Four rows of token ids (three requests and a padding row) at the first sequence bucket. */
function tokenInputs(): Tensor[] {
  const seqLength = entry.manifest.sequence!.buckets[0]!;
  return entry.manifest.inputs.map((spec) => {
    const shape = [4, ...spec.shape.slice(1).map((d) => (d < 0 ? seqLength : d))];
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new BigInt64Array(n);
    for (let i = 0; i < n; i++) values[i] = spec.name.includes('mask') ? 1n : BigInt(1 + ((i * 7) % 50));
    return { name: spec.name, dtype: spec.dtype, shape, data: new Uint8Array(values.buffer) };
  });
}

describe('the fused model of a text package', () => {
  const executor = new OrtExecutor({ device: 'cpu', intraOpNumThreads: 1 });
  afterAll(() => executor.close());

  it("returns the chain's feedback and final answers in one run, nobody answered early", async () => {
    expect(entry.manifest.inputs.every((s) => s.dtype === 'int64')).toBe(true);
    await executor.load(entry, [1, 2, 4]);
    await executor.prepareRamps(MODEL, ee.chosenRamps, true);
    const plan = { mode: 'release' as const, ramps: ee.chosenRamps.map((siteId) => ({ siteId, threshold: 0.9 })), keepRows: [] };
    const exits: unknown[] = [];
    const chain = await executor.infer(MODEL, 4, tokenInputs(), { numRequests: 3, earlyExit: plan, onExit: (e) => exits.push(e) });
    const fused = await executor.infer(MODEL, 4, tokenInputs(), {
      numRequests: 3,
      earlyExit: { ...plan, fused: true },
      onExit: () => exits.push('fused exit'),
    });
    expect(exits).not.toContain('fused exit');
    expect(fused.stages.map((s) => s.name)).toEqual(['fused']);
    expect(fused.feedback!.siteIds).toEqual(ee.chosenRamps);
    expect(fused.feedback!.finalPredictions).toEqual(chain.feedback!.finalPredictions);
    expect(fused.feedback!.predictions).toEqual(chain.feedback!.predictions);
    fused.feedback!.confidences.forEach((perRow, s) => perRow.forEach((c, row) => expect(c).toBeCloseTo(chain.feedback!.confidences[s]![row]!, 4)));
  });
});
