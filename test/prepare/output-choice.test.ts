import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { chooseOutput, pruneToOutput } from '../../prepare/output-choice.js';
import { decodeModel, encodeModel, onnx, type ModelProto } from '../../onnx/onnx-proto.js';
import { preparePackage, PrepareError } from '../../prepare/prepare-package.js';
import { testPrepareOptions } from '../support/prepare-options.js';

const LOGITS = 'Plus214_Output_0';
const FEATURES = 'Pooling160_Output_0_reshape0'; // [N, 256], what the classifier layer reads
const scratch = mkdtempSync(join(tmpdir(), 'escapement-outputs-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The bundled MNIST CNN (opset 7, initializers listed as inputs) with extra outputs, as exporters make them. */
function mnistWith(extra: { probs?: boolean; features?: boolean; twin?: boolean }): ModelProto {
  const model = decodeModel(readFileSync('zoo/mnist-cnn/original.onnx'));
  const graph = model.graph!;
  const logitsType = graph.output![0]!.type!;
  const floatMatrix = (name: string, width: number) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: width }] } } } });
  if (extra.probs) {
    graph.node!.push(onnx.NodeProto.create({ opType: 'Softmax', input: [LOGITS], output: ['probs'] }));
    graph.output!.push(onnx.ValueInfoProto.create({ name: 'probs', type: logitsType }));
  }
  if (extra.features) graph.output!.unshift(floatMatrix(FEATURES, 256));
  if (extra.twin) {
    // a second head on the same features: nothing says which one is the answer
    graph.node!.push(onnx.NodeProto.create({ opType: 'MatMul', input: [FEATURES, 'Parameter193_reshape1'], output: ['other'] }));
    graph.output!.push(floatMatrix('other', 10));
  }
  return model;
}

async function run(model: ModelProto, output: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
  const input = new ort.Tensor(
    'float32',
    Float32Array.from({ length: 784 }, (_, i) => (i % 97) / 97),
    [1, 1, 28, 28],
  );
  const out = (await session.run({ Input3: input }))[output]!.data as Float32Array;
  await session.release();
  return out;
}

describe('choosing the answer among several outputs', () => {
  it('takes the logits over the probabilities computed from them, and over the features under them', () => {
    expect(chooseOutput(mnistWith({ probs: true })).name).toBe(LOGITS);
    expect(chooseOutput(mnistWith({ features: true })).name).toBe(LOGITS);
    const both = chooseOutput(mnistWith({ probs: true, features: true }));
    expect(both.name).toBe(LOGITS);
    expect(both.why).toMatch(
      /answer: output 'Plus214_Output_0' \[1, 10\].*dropped 'Pooling160_Output_0_reshape0' \[N, 256\], 'probs' \[1, 10\] \(choose another with --output\)/,
    );
  });

  it('asks for --output when two outputs could each be the answer, or when the one named is not there', () => {
    expect(() => chooseOutput(mnistWith({ twin: true }))).toThrow(
      /'Plus214_Output_0' \[1, 10\] and 'other' \[N, 10\] could each be the answer; choose the logits with --output NAME/,
    );
    expect(chooseOutput(mnistWith({ twin: true }), 'other').name).toBe('other');
    expect(() => chooseOutput(mnistWith({ probs: true }), 'scores')).toThrow(
      /--output 'scores' is not an output of the model; its outputs are 'Plus214_Output_0' \[1, 10\], 'probs' \[1, 10\]/,
    );
  });

  it('prunes the graph to the chosen output, and it computes the same logits', async () => {
    const model = mnistWith({ probs: true, features: true });
    const before = await run(model, LOGITS);
    pruneToOutput(model, LOGITS);
    expect(model.graph!.output!.map((o) => o.name)).toEqual([LOGITS]);
    expect(model.graph!.node!.some((n) => n.opType === 'Softmax')).toBe(false);
    expect(await run(model, LOGITS)).toEqual(before);
  });

  it('prepares a package from a two-output export, naming what it chose', async () => {
    const path = join(scratch, 'two-outputs.onnx');
    writeFileSync(path, encodeModel(mnistWith({ probs: true })));
    const options = testPrepareOptions(path, scratch, 'two');
    const report = await preparePackage(options);
    expect(report.outputChoice).toMatch(/answer: output 'Plus214_Output_0'.*dropped 'probs'/);
    expect(report.manifest.outputs.map((o) => o.name)).toEqual([LOGITS]);
    writeFileSync(path, encodeModel(mnistWith({ twin: true })));
    await expect(preparePackage({ ...options, outDir: join(scratch, 'twin'), name: 'twin' })).rejects.toThrow(PrepareError);
  });

  it('prepares a two-output PyTorch export (logits and features, batch fixed at 1), answering as the export does', async () => {
    const exported = 'test/fixtures/pytorch/mnist-two-outputs.onnx';
    const report = await preparePackage(testPrepareOptions(exported, scratch, 'pytorch'));
    expect(report.outputChoice).toMatch(/answer: output 'logits'.*dropped 'features'/);
    expect(report.manifest.outputs.map((o) => o.name)).toEqual(['logits']);
    expect(report.manifest.inputs[0]!.shape).toEqual([-1, 1, 28, 28]);
    expect(report.ramps.length).toBeGreaterThan(0);
    // the package's model, batched, answers each row as the batch-1 export does
    const packaged = await ort.InferenceSession.create(join(scratch, 'pytorch', 'model.onnx'), { logSeverityLevel: 3 });
    const original = await ort.InferenceSession.create(exported, { logSeverityLevel: 3 });
    const rows = Array.from({ length: 3 }, (_, r) => Float32Array.from({ length: 784 }, (_, i) => (i * (r + 5)) % 256));
    const batched = (await packaged.run({ pixels: new ort.Tensor('float32', Float32Array.from(rows.flatMap((r) => [...r])), [3, 1, 28, 28]) })).logits!
      .data as Float32Array;
    for (const [r, row] of rows.entries()) {
      const single = (await original.run({ pixels: new ort.Tensor('float32', row, [1, 1, 28, 28]) })).logits!.data as Float32Array;
      for (let k = 0; k < 10; k++) expect(batched[r * 10 + k]!).toBeCloseTo(single[k]!, 3);
    }
    await packaged.release();
    await original.release();
  });
});
