/**
 * Splits a model into a chain of segments at chosen ramp sites, so a worker can run it segment by
 * segment and answer at a ramp before the rest of the model has run.
 *
 * Tensors flow through an environment keyed by name: the request's inputs first, then each
 * segment's outputs. Segment i computes the tensors crossing cut i+1 (or the graph outputs for
 * the last one) from whatever the environment already holds; its inputs are exactly the tensors
 * it consumes from there. Weights are split, not duplicated: each segment carries only the
 * initializers its nodes use.
 */
import { GraphIndex } from './onnx-graph.js';
import { onnx, type ModelProto, type ValueInfoProto } from './onnx-proto.js';

/** A place to cut a graph: where a segment ends and a ramp head may read. */
export interface CutPoint {
  /** The activation tensor crossing the cut. */
  tensor: string;
  /** Side tensors crossing the cut (computed from side inputs only). */
  sideTensors: string[];
  /** Index of the node after which the cut lies. */
  afterNode: number;
  producerName: string;
}

export interface Segment {
  index: number;
  model: ModelProto;
  inputs: string[];
  outputs: string[];
  numNodes: number;
}

/** Element type and shape (batch as -1) of a tensor, as probed. */
export interface TensorType {
  elemType: number;
  dims: number[];
}

function typedValueInfo(name: string, type: TensorType | undefined): ValueInfoProto {
  if (!type) return onnx.ValueInfoProto.create({ name });
  // The batch is N; any other dynamic dimension (a sequence length) gets a name of its own.
  const dim = type.dims.map((d, i) => (d >= 0 ? { dimValue: d } : { dimParam: i === 0 ? 'N' : `d${i}` }));
  return onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: type.elemType, shape: { dim } } } });
}

/**
 * The segments of `model` cut at `cuts` (in depth order), first to last. `types` gives the
 * element type and shape of every cut tensor (segment inputs must be typed); outputs are left
 * untyped, since the runtime infers them.
 */
export function segmentModel(model: ModelProto, cuts: readonly CutPoint[], types: ReadonlyMap<string, TensorType>, primaryInput?: string): Segment[] {
  const index = new GraphIndex(model, primaryInput);
  const graph = index.graph;
  const originalInputs = new Map((graph.input ?? []).map((v) => [v.name ?? '', v]));
  const valueInfo = (name: string): ValueInfoProto => originalInputs.get(name) ?? typedValueInfo(name, types.get(name));
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const irVersion = Number(model.irVersion?.toString() ?? 7);
  const available = new Set(index.dataInputs);
  const ends: string[][] = [...cuts.map((c) => [c.tensor, ...c.sideTensors]), index.outputNames];
  return ends.map((end, i) => {
    const outputs = end.filter((t) => !available.has(t));
    const nodeIds = index.subgraphNodes([...available], outputs);
    const nodes = nodeIds.map((n) => index.nodes[n]!);
    const produced = new Set(nodes.flatMap((n) => n.output ?? []));
    const consumed = new Set(nodes.flatMap((n) => (n.input ?? []).filter(Boolean)));
    const inputs = [...consumed].filter((t) => available.has(t) && !produced.has(t));
    const usedInitializers = [...consumed].filter((t) => initializers.has(t)).map((t) => initializers.get(t)!);
    const segmentGraph = onnx.GraphProto.create({
      name: `${graph.name ?? 'model'}_segment${i}`,
      node: nodes,
      initializer: usedInitializers,
      input: [
        ...inputs.map(valueInfo),
        // NOTE: before IR version 4 every initializer must also be declared as a graph input.
        ...(irVersion < 4 ? usedInitializers.map((t) => valueInfo(t.name ?? '')) : []),
      ],
      output: outputs.map((t) => (index.outputNames.includes(t) ? (graph.output ?? []).find((o) => o.name === t)! : onnx.ValueInfoProto.create({ name: t }))),
    });
    for (const t of outputs) available.add(t);
    return {
      index: i,
      model: onnx.ModelProto.create({
        irVersion: model.irVersion,
        opsetImport: model.opsetImport,
        producerName: 'escapement-segmenter',
        graph: segmentGraph,
      }),
      inputs,
      outputs,
      numNodes: nodes.length,
    };
  });
}
