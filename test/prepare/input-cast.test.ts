/** A Keras/TensorFlow-style export: uint8 pixels in NHWC, made from the bundled MNIST CNN. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { castUint8Inputs } from '../../prepare/input-cast.js';
import { decodeModel, encodeModel, type ModelProto } from '../../onnx/onnx-proto.js';
import { preparePackage } from '../../prepare/prepare-package.js';
import { testPrepareOptions } from '../support/prepare-options.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { kerasStyleExport } from '../../examples/stand-ins.js';

const scratch = mkdtempSync(join(tmpdir(), 'escapement-uint8-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The bundled MNIST CNN as a Keras-style export: uint8 NHWC pixels in (examples/stand-ins.ts). */
const uint8NhwcMnist = (): ModelProto => kerasStyleExport('zoo/mnist-cnn/original.onnx', { probabilities: false });

const pixels = Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 37 + (i >> 5) * 11) % 256);

async function logits(model: ModelProto, feed: ort.Tensor): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3 });
  try {
    const out = await session.run({ [session.inputNames[0]!]: feed });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('uint8 inputs', () => {
  it('become a float32 input of the same name with a Cast inside, computing exactly what the model did', async () => {
    const model = uint8NhwcMnist();
    const before = await logits(model, new ort.Tensor('uint8', pixels, [1, 28, 28, 1]));
    expect(castUint8Inputs(model)).toEqual(['image']);
    expect(model.graph!.input![0]!.type!.tensorType!.elemType).toBe(1);
    expect(model.graph!.node![0]!.opType).toBe('Cast');
    const after = await logits(model, new ort.Tensor('float32', Float32Array.from(pixels), [1, 28, 28, 1]));
    expect(Array.from(after)).toEqual(Array.from(before));
    expect(castUint8Inputs(model)).toEqual([]); // nothing left to cast
  });

  it('prepare accepts an NHWC uint8 export with an IDX dataset and names what it did', async () => {
    const path = join(scratch, 'mnist-uint8-nhwc.onnx');
    writeFileSync(path, encodeModel(uint8NhwcMnist()));
    const report = await preparePackage(testPrepareOptions(path, scratch, 'mnist-uint8'));
    expect(report.castInputs).toEqual(['image']);
    expect(report.manifest.inputs).toEqual([{ name: 'image', dtype: 'float32', shape: [-1, 28, 28, 1] }]);
    expect(report.verification.predictionAgreement).toBe(1);
    expect(report.ramps.length).toBeGreaterThan(0);
    // the package's model answers float32 pixels as the export answered uint8 ones
    const entry = loadModelEntry(scratch, 'mnist-uint8');
    const served = await logits(decodeModel(readFileSync(entry.onnxPath)), new ort.Tensor('float32', Float32Array.from(pixels), [1, 28, 28, 1]));
    const exported = await logits(uint8NhwcMnist(), new ort.Tensor('uint8', pixels, [1, 28, 28, 1]));
    for (let k = 0; k < 10; k++) expect(served[k]!).toBeCloseTo(exported[k]!, 4);
  });

  it('prepare accepts tf2onnx\'s naming: ":0" tensor names, Identity outputs, an unk__ batch dimension', async () => {
    const path = join(scratch, 'mnist-tf2onnx.onnx');
    writeFileSync(path, encodeModel(kerasStyleExport('zoo/mnist-cnn/original.onnx', { probabilities: true, tf2onnxNames: true })));
    const report = await preparePackage(testPrepareOptions(path, scratch, 'mnist-tf2onnx'));
    expect(report.outputChoice).toMatch(/'Identity:0'.*dropped 'Identity_1:0'/);
    expect(report.manifest.inputs).toEqual([{ name: 'serving_default_image:0', dtype: 'float32', shape: [-1, 28, 28, 1] }]);
    expect(report.manifest.outputs.map((o) => o.name)).toEqual(['Identity:0']);
    expect(report.verification.predictionAgreement).toBe(1);
    expect(report.ramps.length).toBeGreaterThan(0);
  });
});
