/**
 * Ramp heads as standalone ONNX models that read a site's tensor and output class probabilities.
 *
 * - feature maps [N, C, H, W]: average pooling to a 2×2 grid → Flatten → Gemm (4C → K) → Softmax.
 *   Apparate's CV ramp pools globally (C features); keeping where in the image a feature fired
 *   lets early ramps, whose channels are few and local, tell more classes apart (measured on
 *   fmnist-resnet: served exits at the stage-1 sites rose from 14–17 % to 21–27 % at the same
 *   agreement target). A head without `pool` pools globally;
 * - hidden states [N, T, D]: first token → Gemm (D → D) → Tanh → Gemm (D → K) → Softmax (a
 *   DeeBERT highway: BertPooler + classifier).
 * Weights are float32 raw_data initializers; the head's input is named after the site's tensor so
 * a worker can feed it straight from the segment chain's environment.
 */
import { encodeModel, onnx, type ModelProto } from '../onnx/onnx-proto.js';
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
  /** feature-map: the AveragePool geometry (see `gridPooling`); absent: global average pooling. */
  pool?: PoolGeometry;
}

export interface PoolGeometry {
  kernel: [number, number];
  strides: [number, number];
}

/**
 * AveragePool geometry that cuts an H×W map into a 2×2 grid of (possibly overlapping) windows:
 * kernel ⌈H/2⌉, stride H − kernel (at least 1); a side of length 1 stays 1.
 */
export function gridPooling(height: number, width: number): PoolGeometry {
  const axis = (n: number) => {
    const kernel = Math.ceil(n / 2);
    return [kernel, Math.max(1, n - kernel)] as const;
  };
  const [kh, sh] = axis(height);
  const [kw, sw] = axis(width);
  return { kernel: [kh, kw], strides: [sh, sw] };
}

/** The pooling nodes of a feature-map head (or feature extractor): `input` -> `output` [N, C·cells]. */
export function poolingNodes(input: string, output: string, prefix: string, pool: PoolGeometry | undefined) {
  const pooled = `${prefix}_pool`;
  const first = pool
    ? onnx.NodeProto.create({
        opType: 'AveragePool',
        input: [input],
        output: [pooled],
        name: pooled,
        attribute: [
          { name: 'kernel_shape', type: 7, ints: pool.kernel },
          { name: 'strides', type: 7, ints: pool.strides },
        ],
      })
    : onnx.NodeProto.create({ opType: 'GlobalAveragePool', input: [input], output: [pooled], name: pooled });
  return [
    first,
    onnx.NodeProto.create({ opType: 'Flatten', input: [pooled], output: [output], name: `${prefix}_flat`, attribute: [{ name: 'axis', type: 2, i: 1 }] }),
  ];
}

function floatInitializer(name: string, dims: number[], values: Float32Array) {
  return onnx.TensorProto.create({
    name,
    dims,
    dataType: 1,
    rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
  });
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
    nodes.push(...poolingNodes(x, `${p}_features`, p, head.pool));
    x = `${p}_features`;
  } else {
    initializers.push(onnx.TensorProto.create({ name: `${p}_first`, dims: [], dataType: 7, rawData: new Uint8Array(8) }));
    nodes.push(
      onnx.NodeProto.create({
        opType: 'Gather',
        input: [x, `${p}_first`],
        output: [`${p}_cls`],
        name: `${p}_cls`,
        attribute: [{ name: 'axis', type: 2, i: 1 }],
      }),
    );
    x = `${p}_cls`;
  }
  head.layers.forEach((layer, i) => {
    initializers.push(floatInitializer(`${p}_w${i}`, [layer.outDim, layer.inDim], layer.weights));
    initializers.push(floatInitializer(`${p}_b${i}`, [layer.outDim], layer.bias));
    nodes.push(
      onnx.NodeProto.create({
        opType: 'Gemm',
        input: [x, `${p}_w${i}`, `${p}_b${i}`],
        output: [`${p}_fc${i}`],
        name: `${p}_fc${i}`,
        attribute: [{ name: 'transB', type: 2, i: 1 }],
      }),
    );
    x = `${p}_fc${i}`;
    if (i < head.layers.length - 1) {
      nodes.push(onnx.NodeProto.create({ opType: 'Tanh', input: [x], output: [`${p}_tanh${i}`], name: `${p}_tanh${i}` }));
      x = `${p}_tanh${i}`;
    }
  });
  nodes.push(
    onnx.NodeProto.create({
      opType: 'Softmax',
      input: [x],
      output: [headOutputName(siteId)],
      name: `${p}_softmax`,
      attribute: [{ name: 'axis', type: 2, i: 1 }],
    }),
  );
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
