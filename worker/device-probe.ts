/** A one-node ONNX model (Identity on a float32 [1]) used to check that a device works at startup. */
import { onnx, encodeModel } from '../onnx/onnx-proto.js';

export function identityModelBytes(): Uint8Array {
  const tensorType = (name: string) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'probe',
      node: [{ opType: 'Identity', input: ['x'], output: ['y'], name: 'identity' }],
      input: [tensorType('x')],
      output: [tensorType('y')],
    },
  });
  return encodeModel(model);
}
