/**
 * Ramp sites: the places where a model can be cut into a chain of segments, each handing exactly
 * one activation tensor to the next (plus side tensors such as an attention mask, which depend
 * on side inputs only).
 *
 * Definition: walking the live nodes in graph (topological) order, the cut after node k is the
 * set of activation tensors produced at or before k and consumed after k. A site is a position
 * whose cut holds exactly one main tensor. Such a tensor dominates the output: every path from
 * the primary input to the output passes through it, whatever topological order is used, so a
 * ResNet is cut after each residual block (never inside, where the skip connection is also live)
 * and a SqueezeNet fire module is never split (its expand branches are live together).
 *
 * Shapes come from running the model once with every candidate as an extra output (ONNX shape
 * inference is not available in Node). Sites whose tensor suits a ramp head are kept: feature
 * maps [N, C, H, W] with H×W > 1 (CV heads pool them) and hidden states [N, T, D] (sequence
 * heads read the first token). Of consecutive cuts joined by a shape-preserving node (Add → Relu),
 * only the later one is kept.
 */
import * as ort from 'onnxruntime-node';
import { GraphIndex } from '../onnx/onnx-graph.js';
import { encodeModel, onnx, type ModelProto } from '../onnx/onnx-proto.js';
import type { CutPoint, TensorType } from '../onnx/segmenter.js';

export type SiteKind = 'feature-map' | 'sequence';

export interface RampSite extends CutPoint {
  /** Stable id, in depth order: site 0 is the earliest. */
  id: number;
  kind: SiteKind;
  /** Shape with the batch dimension as -1. */
  shape: number[];
  /** ONNX element type of the tensor. */
  elemType: number;
}

/** Every single-activation cut of the graph, in depth order (the final output excluded). */
export function findCuts(index: GraphIndex): CutPoint[] {
  const live = index.liveNodes();
  const order = [...live].sort((a, b) => a - b);
  const positionOf = new Map(order.map((node, pos) => [node, pos]));
  const lastUse = new Map<string, number>();
  const END = order.length;
  const noteUse = (tensor: string, pos: number) => lastUse.set(tensor, Math.max(lastUse.get(tensor) ?? -1, pos));
  for (const node of order) {
    for (const inp of index.nodes[node]!.input ?? []) if (inp) noteUse(inp, positionOf.get(node)!);
  }
  for (const out of index.outputNames) noteUse(out, END);

  const crossing = new Set<string>(); // main tensors alive across the current position
  const sideCrossing = new Set<string>();
  const track = (tensor: string, pos: number) => {
    if ((lastUse.get(tensor) ?? -1) <= pos) return;
    if (index.mainTensors.has(tensor)) crossing.add(tensor);
    else if (index.sideTensors.has(tensor)) sideCrossing.add(tensor);
  };
  for (const input of index.dataInputs) track(input, -1);

  const cuts: CutPoint[] = [];
  order.forEach((node, pos) => {
    for (const out of index.nodes[node]!.output ?? []) if (out) track(out, pos);
    for (const set of [crossing, sideCrossing]) for (const t of set) if ((lastUse.get(t) ?? -1) <= pos) set.delete(t);
    if (crossing.size !== 1) return;
    const [tensor] = crossing as unknown as [string];
    if (index.outputNames.includes(tensor) || tensor === index.primaryInput) return;
    if (index.producer.get(tensor) !== node) return; // the same cut as at an earlier position
    cuts.push({ tensor, sideTensors: [...sideCrossing], afterNode: node, producerName: index.nodeName(node) });
  });
  return cuts;
}

export interface ProbeInput {
  name: string;
  /** Concrete shape including the batch dimension. */
  shape: number[];
  data: Float32Array | BigInt64Array;
}

const ORT_ELEM_TYPES: Record<string, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float64: 11 };

type ProbedTensors = Map<string, { dims: number[]; elemType: number }>;

/** Runs the model once per input set with the given tensors as extra outputs; returns their shapes and types. */
export async function probeTensors(model: ModelProto, tensors: string[], inputSets: ProbeInput[][]): Promise<ProbedTensors[]> {
  // The tensors become graph outputs of one serialised copy; the model itself is restored at once.
  // (Decoding a copy instead held the weights three times over: 1.3 GB for BERT-base.)
  const graph = model.graph!;
  const outputs = graph.output ?? [];
  const existing = new Set(outputs.map((o) => o.name));
  graph.output = [...outputs, ...tensors.filter((t) => !existing.has(t)).map((name) => onnx.ValueInfoProto.create({ name }))];
  let bytes: Uint8Array;
  try {
    bytes = encodeModel(model);
  } finally {
    graph.output = outputs;
  }
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3, graphOptimizationLevel: 'disabled' });
  try {
    const probed = [];
    for (const inputs of inputSets) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const input of inputs) feeds[input.name] = new ort.Tensor(input.data instanceof BigInt64Array ? 'int64' : 'float32', input.data, input.shape);
      const results = await session.run(feeds, tensors);
      probed.push(new Map(tensors.map((t) => [t, { dims: [...results[t]!.dims], elemType: ORT_ELEM_TYPES[results[t]!.type] ?? 0 }])));
    }
    return probed;
  } finally {
    await session.release();
  }
}

/**
 * Ops that only transform values in place (or, for LayerNormalization, normalise each position
 * on its own): a cut right before one is the same place in the network. A post-LN transformer's
 * residual Add -> LayerNormalization is one site, the normalised one.
 */
const ELEMENTWISE = new Set([
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Sigmoid',
  'Tanh',
  'Clip',
  'Dropout',
  'Identity',
  'BatchNormalization',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Softplus',
  'Gelu',
  'Erf',
  'HardSwish',
  'HardSigmoid',
  'LayerNormalization',
]);

const FLOAT_ELEM = 1;
/** Ops that move or retype values without computing anything. */
const LAYOUT_OPS = new Set(['Cast', 'Transpose', 'Reshape', 'Identity', 'Squeeze', 'Unsqueeze', 'Flatten', 'Constant']);

function siteKind(shape: number[]): SiteKind | undefined {
  if (shape.length === 4 && shape[2]! * shape[3]! > 1) return 'feature-map';
  if (shape.length === 3) return 'sequence';
  return undefined;
}

/**
 * Ramp sites of a model: its cuts whose tensor suits a head, probed so that the batch dimension
 * can be told apart (it must equal the probe batch). Text models pass a second probe with another
 * sequence length (`altInputs`): dimensions that differ between the two are dynamic (-1).
 */
export async function findRampSites(
  model: ModelProto,
  inputs: ProbeInput[],
  primaryInput?: string,
  altInputs?: ProbeInput[],
): Promise<{ sites: RampSite[]; types: Map<string, TensorType> }> {
  const index = new GraphIndex(model, primaryInput);
  const cuts = findCuts(index);
  if (cuts.length === 0) return { sites: [], types: new Map() };
  const batch = inputs[0]!.shape[0]!;
  const names = [...new Set(cuts.flatMap((c) => [c.tensor, ...c.sideTensors]))];
  const [probed, alt] = (await probeTensors(model, names, altInputs ? [inputs, altInputs] : [inputs])) as [ProbedTensors, ProbedTensors?];
  const dynamicDims = (t: string, dims: number[]) => dims.map((d, i) => (i === 0 || (alt && alt.get(t)!.dims[i] !== d) ? -1 : d));
  const types = new Map([...probed].map(([t, p]) => [t, { elemType: p.elemType, dims: dynamicDims(t, p.dims) }]));
  const shapes = new Map([...probed].map(([t, p]) => [t, p.dims]));
  const sites: RampSite[] = [];
  cuts.forEach((cut, i) => {
    const shape = shapes.get(cut.tensor)!;
    const kind = siteKind(shape);
    // Heads read float activations (not, say, the uint8 pixels a Cast in front of a model passes on),
    // and only after some computation: the input merely cast or transposed (an export's NHWC
    // front: Cast, Transpose) is no place for a ramp.
    if (!kind || shape[0] !== batch || probed.get(cut.tensor)!.elemType !== FLOAT_ELEM) return;
    if (index.nodes.slice(0, cut.afterNode + 1).every((n) => LAYOUT_OPS.has(n.opType ?? ''))) return;
    // Of Add -> Relu (both cuts, same shape, one feeding only the other elementwise), keep the Relu.
    const next = cuts[i + 1];
    const consumers = index.consumers.get(cut.tensor) ?? [];
    const follower = next ? (index.nodes[next.afterNode]!.opType ?? '') : '';
    if (next && consumers.length === 1 && consumers[0] === next.afterNode && ELEMENTWISE.has(follower) && sameDims(shapes.get(next.tensor)!, shape)) return;
    sites.push({ ...cut, id: sites.length, kind, shape: types.get(cut.tensor)!.dims, elemType: probed.get(cut.tensor)!.elemType });
  });
  return { sites, types };
}

function sameDims(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
