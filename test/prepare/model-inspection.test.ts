import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatInspection, inspectModel } from '../../prepare/model-inspection.js';
import { decodeModel, encodeModel, onnx } from '../../onnx/onnx-proto.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import { kerasStyleExport } from '../../examples/stand-ins.js';

const imageInput = (name: string) => ({
  name,
  type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }, { dimValue: 28 }, { dimValue: 28 }] } } },
});
const logits = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 10 }] } } } });

describe('escapement inspect', () => {
  it('finds the ramp sites prepare found for a bundled model, with shapes and depth, and says what prepare would do', async () => {
    const path = 'zoo/fmnist-resnet/original.onnx';
    const inspection = await inspectModel(path, readFileSync(path));
    const packaged = loadModelEntry('models', 'fmnist-resnet').manifest.earlyExit!.sites;
    expect(inspection.refusal).toBeUndefined();
    expect(inspection.sites.map((s) => s.shape)).toEqual(packaged.map((s) => s.shape));
    expect(inspection.sites.map((s) => s.producer)).toEqual(packaged.map((s) => s.producer));
    const depths = inspection.sites.map((s) => s.relativeDepth);
    expect(depths.every((d, k) => d > 0 && d < 1 && (k === 0 || d > depths[k - 1]!))).toBe(true);
    expect(inspection.inputs.map((i) => [i.dtype, i.dims.length])).toEqual([['float32', 4]]);
    const text = formatInspection(inspection);
    expect(text).toMatch(/ramp sites:\n {2}site 0: after .*, feature-map \[-1, \d+, \d+, \d+\], at \d+ % of the graph/);
    expect(text).toMatch(/prepare would:\n {2}1\. serve output/);
  });

  it('inspects a Keras-style export (uint8 NHWC pixels, two outputs) as prepare takes it', async () => {
    const bytes = encodeModel(kerasStyleExport('zoo/fmnist-resnet/original.onnx'));
    const inspection = await inspectModel('keras-style.onnx', bytes);
    expect(inspection.refusal).toBeUndefined();
    expect(inspection.inputs.map((i) => [i.name, i.dtype, i.dims])).toEqual([['image', 'uint8', ['N', 28, 28, 1]]]);
    expect(inspection.plan).toContain("take input 'image' (uint8) as float32 pixel values 0-255 and cast them back inside");
    expect(inspection.answer).toMatch(/'logits'/);
    const packaged = loadModelEntry('models', 'fmnist-resnet').manifest.earlyExit!.sites;
    expect(inspection.sites.map((s) => s.shape)).toEqual(packaged.map((s) => s.shape)); // the same sites behind the Cast and Transpose
  });

  it('says why prepare would refuse a model: no ramp site, control flow (naming the node), an ambiguous answer', async () => {
    const mlp = onnx.ModelProto.create({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'mlp',
        node: [
          { opType: 'Flatten', input: ['x'], output: ['f'] },
          { opType: 'MatMul', input: ['f', 'w'], output: ['y'] },
          { opType: 'MatMul', input: ['f', 'w'], output: ['z'] },
        ],
        initializer: [{ name: 'w', dims: [784, 10], dataType: 1, rawData: new Uint8Array(784 * 10 * 4) }],
        input: [imageInput('x')],
        output: [logits('y')],
      },
    });
    expect((await inspectModel('mlp.onnx', encodeModel(mlp))).refusal).toMatch(/no usable ramp site/);
    mlp.graph!.output!.push(logits('z'));
    const twin = await inspectModel('twin.onnx', encodeModel(mlp));
    expect(twin.refusal).toMatch(/'y' \[N, 10\] and 'z' \[N, 10\] could each be the answer; choose the logits with --output NAME/);
    expect((await inspectModel('twin.onnx', encodeModel(mlp), 'z')).refusal).toMatch(/no usable ramp site/);
    mlp.graph!.node!.push({ name: 'the_loop', opType: 'Loop', input: ['', ''], output: ['l'] });
    expect((await inspectModel('loop.onnx', encodeModel(mlp))).refusal).toMatch(/node 'the_loop' is control flow \(Loop\).*Export the model traced/);
  });

  it('names the node whose op onnxruntime lacks, and what to do about it', async () => {
    const model = decodeModel(readFileSync('zoo/fmnist-resnet/original.onnx'));
    const node = model.graph!.node!.find((n) => n.opType === 'Relu')!;
    const relus = model.graph!.node!.filter((n) => n.opType === 'Relu').length;
    node.opType = 'FancyNorm';
    node.domain = 'com.example';
    model.opsetImport!.push({ domain: 'com.example', version: 1 });
    const refusal = (await inspectModel('custom.onnx', encodeModel(model))).refusal!;
    expect(refusal).toContain(`no kernel for com.example:FancyNorm, used by node '${node.name}'`);
    expect(refusal).toMatch(/Re-export the model with standard ONNX ops only/);
    expect(relus).toBeGreaterThan(1); // only the changed node is named
    expect(refusal).not.toMatch(/and \d+ more/);
  });
});
