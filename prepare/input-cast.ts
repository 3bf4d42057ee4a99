/**
 * Models whose image input is uint8 (TensorFlow and Keras exports often take raw pixels as bytes)
 * are served with a float32 input in the same units: the package's graph gets a new float32 input
 * of the same name and shape and a Cast to uint8 in front of the original graph. Everything that
 * feeds a package (datasets, which hold pixels as float32; clients; the ramps' probes and
 * profiles) then speaks one input type, and the model computes exactly what it did: pixels
 * 0–255 survive the round trip. A client sends pixel values as float32 (0–255).
 */
import { onnx, type ModelProto } from '../onnx/onnx-proto.js';

const UINT8 = 2;
const FLOAT = 1;

/** Rewrites every uint8 graph input as float32 + Cast; returns the names rewritten. */
export function castUint8Inputs(model: ModelProto): string[] {
  const graph = model.graph!;
  const rewritten: string[] = [];
  for (const input of graph.input ?? []) {
    const tensorType = input.type?.tensorType;
    if (!tensorType || tensorType.elemType !== UINT8) continue;
    const name = input.name!;
    const inner = `${name}__uint8`;
    for (const node of graph.node ?? []) node.input = (node.input ?? []).map((n) => (n === name ? inner : n));
    for (const output of graph.output ?? []) if (output.name === name) throw new Error(`input '${name}' is also a graph output; it cannot be cast`);
    tensorType.elemType = FLOAT;
    graph.node!.unshift(onnx.NodeProto.create({ opType: 'Cast', input: [name], output: [inner], name: inner, attribute: [{ name: 'to', type: 2, i: UINT8 }] }));
    rewritten.push(name);
  }
  return rewritten;
}
