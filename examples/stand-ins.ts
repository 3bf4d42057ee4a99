/**
 * Models in the shapes other people's exporters produce, made from the bundled ones, for the
 * bring-your-own walkthrough and tests.
 */
import { readFileSync } from 'node:fs';
import { decodeModel, onnx, type ModelProto } from '../onnx/onnx-proto.js';

/**
 * What a TensorFlow/Keras export of an NCHW float classifier looks like: the image comes in as
 * uint8 pixels in NHWC (`image`, [N,H,W,C]), and the model returns its logits and the softmax
 * probabilities (`probabilities`) as two outputs.
 */
export function kerasStyleExport(path: string, options: { probabilities?: boolean; tf2onnxNames?: boolean } = { probabilities: true }): ModelProto {
  const model = decodeModel(readFileSync(path));
  const graph = model.graph!;
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  const original = graph.input!.find((i) => !inits.has(i.name))!;
  const [, c, h, w] = original.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue?.toString() ?? 0));
  graph.input = graph.input!.filter((i) => i !== original);
  graph.input.unshift(
    onnx.ValueInfoProto.create({
      name: 'image',
      type: { tensorType: { elemType: 2, shape: { dim: [{ dimParam: 'N' }, { dimValue: h }, { dimValue: w }, { dimValue: c }] } } },
    }),
  );
  graph.node!.unshift(
    onnx.NodeProto.create({ opType: 'Cast', input: ['image'], output: ['image_float'], name: 'to_float', attribute: [{ name: 'to', type: 2, i: 1 }] }),
    onnx.NodeProto.create({
      opType: 'Transpose',
      input: ['image_float'],
      output: [original.name!],
      name: 'to_nchw',
      attribute: [{ name: 'perm', type: 7, ints: [0, 3, 1, 2] }],
    }),
  );
  if (options.probabilities) {
    const logits = graph.output![0]!;
    graph.node!.push(
      onnx.NodeProto.create({
        opType: 'Softmax',
        input: [logits.name!],
        output: ['probabilities'],
        name: 'probabilities',
        attribute: [{ name: 'axis', type: 2, i: 1 }],
      }),
    );
    graph.output!.push(onnx.ValueInfoProto.create({ name: 'probabilities', type: logits.type }));
  }
  if (options.tf2onnxNames) renameAsTf2onnx(model);
  return model;
}

/**
 * The names tf2onnx gives a SavedModel's signature: `serving_default_<input>:0` in,
 * `Identity:0`, `Identity_1:0`, ... out, and `unk__<n>` for an unknown batch dimension.
 */
function renameAsTf2onnx(model: ModelProto): void {
  const graph = model.graph!;
  const renames = new Map<string, string>([['image', 'serving_default_image:0']]);
  graph.output!.forEach((o, k) => renames.set(o.name!, k === 0 ? 'Identity:0' : `Identity_${k}:0`));
  const rename = (name: string) => renames.get(name) ?? name;
  for (const node of graph.node!) {
    node.input = node.input!.map(rename);
    node.output = node.output!.map(rename);
  }
  for (const v of [...graph.input!, ...graph.output!]) {
    v.name = rename(v.name!);
    const batch = v.type?.tensorType?.shape?.dim?.[0];
    if (batch && !batch.dimValue) batch.dimParam = 'unk__617';
  }
}
