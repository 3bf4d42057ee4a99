/**
 * A BERT-shaped text classifier written straight to ONNX, with seeded random weights: the
 * repository's own export of the real-size text workload (BERT-base is 12 layers, hidden 768,
 * 12 heads, feed-forward 3,072, 30,522 tokens, sequences of 128). Untrained: it measures what
 * preparing and serving a model of that size costs in time and memory, not accuracy.
 *
 * The graph has the bundled spam-transformer's layout (zoo/spam-transformer/train.py) so that
 * `prepare` treats it the same way: inputs `input_ids` and `attention_mask` (int64 [N, T]),
 * output `logits` [N, classes]; token + position + type embeddings and LayerNorm; post-LN encoder
 * layers; a pooler on the first token. The mask bias is computed once and every layer takes its
 * sizes from its own input (Reshape with 0 = "copy this dim"), so between layers only the hidden
 * state and the mask bias cross and prepare finds a ramp site after every layer.
 */
import { onnx, OnnxDataType, type ModelProto, type NodeProto, type OnnxNamespace, type TensorProto } from '../onnx/onnx-proto.js';
import { seededRandom } from '../shared/seeded-random.js';

export interface BertShape {
  layers: number;
  hidden: number;
  heads: number;
  feedForward: number;
  vocab: number;
  maxTokens: number;
  classes: number;
}

export const BERT_BASE: BertShape = { layers: 12, hidden: 768, heads: 12, feedForward: 3072, vocab: 30522, maxTokens: 128, classes: 2 };

/** BERT's initialisation: weights ~ N(0, 0.02²), biases 0, LayerNorm scale 1 and shift 0. */
class Weights {
  readonly tensors: TensorProto[] = [];
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  normal(name: string, dims: number[], std = 0.02): string {
    const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i += 2) {
      // Box-Muller: two normal draws from two uniform ones.
      const radius = std * Math.sqrt(-2 * Math.log(1 - this.random()));
      const angle = 2 * Math.PI * this.random();
      values[i] = radius * Math.cos(angle);
      if (i + 1 < values.length) values[i + 1] = radius * Math.sin(angle);
    }
    return this.add(name, dims, values);
  }

  filled(name: string, dims: number[], value: number): string {
    return this.add(name, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(value));
  }

  int64(name: string, values: number[]): string {
    const raw = new Uint8Array(8 * values.length);
    values.forEach((v, i) => new DataView(raw.buffer).setBigInt64(8 * i, BigInt(v), true));
    this.tensors.push(onnx.TensorProto.create({ name, dims: [values.length], dataType: OnnxDataType.INT64, rawData: raw }));
    return name;
  }

  private add(name: string, dims: number[], values: Float32Array): string {
    this.tensors.push(onnx.TensorProto.create({ name, dims, dataType: OnnxDataType.FLOAT, rawData: new Uint8Array(values.buffer) }));
    return name;
  }
}

export function bertShapedEncoder(shape: BertShape = BERT_BASE, seed = 1): ModelProto {
  const { layers, hidden, heads, feedForward, vocab, maxTokens, classes } = shape;
  if (hidden % heads !== 0) throw new Error(`hidden (${hidden}) must be a multiple of heads (${heads})`);
  const w = new Weights(seed);
  const nodes: NodeProto[] = [];
  const node = (opType: string, input: string[], output: string, attribute: OnnxNamespace.IAttributeProto[] = []): string => {
    nodes.push(onnx.NodeProto.create({ opType, input, output: [output], name: output, attribute }));
    return output;
  };
  const ints = (name: string, values: number[]): OnnxNamespace.IAttributeProto => ({ name, type: 7, ints: values });
  const int = (name: string, i: number): OnnxNamespace.IAttributeProto => ({ name, type: 2, i });
  const layerNorm = (x: string, p: string) =>
    node('LayerNormalization', [x, w.filled(`${p}.scale`, [hidden], 1), w.filled(`${p}.shift`, [hidden], 0)], p, [
      int('axis', -1),
      { name: 'epsilon', type: 1, f: 1e-12 },
    ]);
  const linear = (x: string, p: string, inDim: number, outDim: number) =>
    node('Add', [node('MatMul', [x, w.normal(`${p}.weight`, [inDim, outDim])], `${p}.matmul`), w.filled(`${p}.bias`, [outDim], 0)], p);
  const scalar = (name: string, value: number) => w.filled(name, [], value);

  // Mask bias [N, 1, 1, T]: 0 where attended, -10,000 at padding; computed once, read by every layer.
  const maskFloat = node('Cast', ['attention_mask'], 'mask.float', [int('to', OnnxDataType.FLOAT)]);
  const padding = node('Sub', [scalar('one', 1), maskFloat], 'mask.padding');
  const maskBias = node('Unsqueeze', [node('Mul', [padding, scalar('mask.scale', -1e4)], 'mask.scaled'), w.int64('mask.axes', [1, 2])], 'mask.bias');

  // Embeddings: tokens + positions [0, T) + token type 0, then LayerNorm.
  const tokens = node('Gather', [w.normal('embeddings.tokens', [vocab, hidden]), 'input_ids'], 'embeddings.token');
  const length = node('Shape', ['input_ids'], 'embeddings.length', [int('start', 1), int('end', 2)]);
  const positions = node(
    'Slice',
    [w.normal('embeddings.positions', [maxTokens, hidden]), w.int64('embeddings.zero', [0]), length, w.int64('embeddings.axis', [0])],
    'embeddings.position',
  );
  const summed = node('Add', [node('Add', [tokens, positions], 'embeddings.sum'), w.normal('embeddings.type', [hidden])], 'embeddings.typed');
  let x = layerNorm(summed, 'embeddings.norm');

  const headDim = hidden / heads;
  const splitHeads = w.int64('split_heads', [0, 0, heads, headDim]);
  const mergeHeads = w.int64('merge_heads', [0, 0, hidden]);
  const invSqrt = scalar('attention.scale', 1 / Math.sqrt(headDim));
  const half = scalar('gelu.half', 0.5);
  const invSqrt2 = scalar('gelu.inv_sqrt2', Math.SQRT1_2);
  for (let l = 0; l < layers; l++) {
    const p = `layer${l}`;
    const project = (name: string, perm: number[]) =>
      node('Transpose', [node('Reshape', [linear(x, `${p}.${name}`, hidden, hidden), splitHeads], `${p}.${name}.heads`)], `${p}.${name}.t`, [
        ints('perm', perm),
      ]);
    const q = project('query', [0, 2, 1, 3]);
    const kT = project('key', [0, 2, 3, 1]);
    const v = project('value', [0, 2, 1, 3]);
    const scores = node('Add', [node('Mul', [node('MatMul', [q, kT], `${p}.qk`), invSqrt], `${p}.scores.scaled`), maskBias], `${p}.scores`);
    const context = node('MatMul', [node('Softmax', [scores], `${p}.probs`, [int('axis', -1)]), v], `${p}.context.heads`);
    const merged = node('Reshape', [node('Transpose', [context], `${p}.context.t`, [ints('perm', [0, 2, 1, 3])]), mergeHeads], `${p}.context`);
    x = layerNorm(node('Add', [x, linear(merged, `${p}.output`, hidden, hidden)], `${p}.attention.residual`), `${p}.attention.norm`);
    const up = linear(x, `${p}.intermediate`, hidden, feedForward);
    const erf = node('Erf', [node('Mul', [up, invSqrt2], `${p}.gelu.scaled`)], `${p}.gelu.erf`);
    const gelu = node('Mul', [node('Mul', [up, half], `${p}.gelu.half`), node('Add', [erf, scalar(`${p}.gelu.one`, 1)], `${p}.gelu.shifted`)], `${p}.gelu`);
    x = layerNorm(node('Add', [x, linear(gelu, `${p}.ffn`, feedForward, hidden)], `${p}.ffn.residual`), `${p}.ffn.norm`);
  }

  const first = node('Gather', [x, w.int64('pooler.index', [0])], 'pooler.first', [int('axis', 1)]);
  const pooled = node('Tanh', [linear(node('Squeeze', [first, w.int64('pooler.axis', [1])], 'pooler.token'), 'pooler.dense', hidden, hidden)], 'pooler');
  linear(pooled, 'logits', hidden, classes);

  const tokenInput = (name: string) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: OnnxDataType.INT64, shape: { dim: [{ dimParam: 'N' }, { dimParam: 'T' }] } } } });
  return onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'escapement bench/bert-shaped-encoder.ts',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'bert-shaped-encoder',
      node: nodes,
      initializer: w.tensors,
      input: [tokenInput('input_ids'), tokenInput('attention_mask')],
      output: [
        onnx.ValueInfoProto.create({
          name: 'logits',
          type: { tensorType: { elemType: OnnxDataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: classes }] } } },
        }),
      ],
    },
  });
}

/** Weights in a model (float tensors; scalar constants are not weights), for its description. */
export function parameterCount(model: ModelProto): number {
  return (model.graph!.initializer ?? [])
    .filter((t) => t.dataType === OnnxDataType.FLOAT && (t.dims ?? []).length > 0)
    .reduce((sum, t) => sum + (t.dims ?? []).reduce((a: number, b) => a * Number(b), 1), 0);
}
