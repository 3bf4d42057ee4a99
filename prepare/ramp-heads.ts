/**
 * Ramp heads as standalone ONNX models that read a site's tensor and output class probabilities.
 *
 * - feature maps [N, C, H, W]: GlobalAveragePool → Flatten → Gemm (C → K) → Softmax, mirroring a
 *   CNN's own head with its own weights (Apparate's CV ramp);
 * - hidden states [N, T, D]: first token → Gemm (D → D) → Tanh → Gemm (D → K) → Softmax (a
 *   DeeBERT highway: BertPooler + classifier).
 * Weights are float32 raw_data initializers; the head's input is named after the site's tensor so
 * a worker can feed it straight from the segment chain's environment.
 */
import { encodeModel, onnx, type ModelProto } from './onnx-proto.js';
import type { SiteKind } from './ramp-sites.js';

export const HEAD_OPSET = 13;

export interface LinearLayer {
  /** Row-major [outDim, inDim]. */
  weights: Float32Array;
  bias: Float32Array;
  inDim: number;
  outDim: number;
}

export interface HeadWeights {
  kind: SiteKind;
  /** feature-map: [classifier]; sequence: [pooler, classifier]. */
  layers: LinearLayer[];
}

function floatInitializer(name: string, dims: number[], values: Float32Array) {
  return onnx.TensorProto.create({ name, dims, dataType: 1, rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) });
}

export function headOutputName(siteId: number): string {
  return `ramp${siteId}_probs`;
}

export function buildHeadModel(siteId: number, inputTensor: string, inputDims: number[], elemType: number, head: HeadWeights): ModelProto {
  const p = `ramp${siteId}`;
  const nodes: ReturnType<typeof onnx.NodeProto.create>[] = [];
  const initializers = [];
  let x = inputTensor;
  if (head.kind === 'feature-map') {
    nodes.push(onnx.NodeProto.create({ opType: 'GlobalAveragePool', input: [x], output: [`${p}_gap`], name: `${p}_gap` }));
    nodes.push(onnx.NodeProto.create({ opType: 'Flatten', input: [`${p}_gap`], output: [`${p}_flat`], name: `${p}_flat`, attribute: [{ name: 'axis', type: 2, i: 1 }] }));
    x = `${p}_flat`;
  } else {
    initializers.push(onnx.TensorProto.create({ name: `${p}_first`, dims: [], dataType: 7, rawData: new Uint8Array(8) }));
    nodes.push(onnx.NodeProto.create({ opType: 'Gather', input: [x, `${p}_first`], output: [`${p}_cls`], name: `${p}_cls`, attribute: [{ name: 'axis', type: 2, i: 1 }] }));
    x = `${p}_cls`;
  }
  head.layers.forEach((layer, i) => {
    initializers.push(floatInitializer(`${p}_w${i}`, [layer.outDim, layer.inDim], layer.weights));
    initializers.push(floatInitializer(`${p}_b${i}`, [layer.outDim], layer.bias));
    nodes.push(onnx.NodeProto.create({ opType: 'Gemm', input: [x, `${p}_w${i}`, `${p}_b${i}`], output: [`${p}_fc${i}`], name: `${p}_fc${i}`, attribute: [{ name: 'transB', type: 2, i: 1 }] }));
    x = `${p}_fc${i}`;
    if (i < head.layers.length - 1) {
      nodes.push(onnx.NodeProto.create({ opType: 'Tanh', input: [x], output: [`${p}_tanh${i}`], name: `${p}_tanh${i}` }));
      x = `${p}_tanh${i}`;
    }
  });
  nodes.push(onnx.NodeProto.create({ opType: 'Softmax', input: [x], output: [headOutputName(siteId)], name: `${p}_softmax`, attribute: [{ name: 'axis', type: 2, i: 1 }] }));
  const dim = inputDims.map((d, i) => (d >= 0 ? { dimValue: d } : { dimParam: i === 0 ? 'N' : `d${i}` }));
  return onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: HEAD_OPSET }],
    producerName: 'escapement-ramp',
    graph: {
      name: p,
      node: nodes,
      initializer: initializers,
      input: [{ name: inputTensor, type: { tensorType: { elemType, shape: { dim } } } }],
      output: [{ name: headOutputName(siteId) }],
    },
  });
}

export function headModelBytes(...args: Parameters<typeof buildHeadModel>): Uint8Array {
  return encodeModel(buildHeadModel(...args));
}
