/**
 * Which graph output is the classifier's answer, for models exported with several outputs
 * (logits and probabilities, logits and features, ...), and the graph pruned to that output.
 *
 * Without `--output`, a candidate is a float output of shape [N, C] with C > 1. Among several:
 * - probabilities computed from another candidate (a Softmax or LogSoftmax whose input is that
 *   candidate) give way to it: ramps are distilled from logits;
 * - an output that feeds another candidate (features under the classifier layer) gives way to it.
 * One left: chosen, and `why` says so. None or several: a PrepareError-worthy message that lists
 * the outputs with their shapes and asks for `--output`.
 *
 * The other outputs are dropped from the package (not carried to responses): the graph keeps
 * only the nodes the chosen output needs, and the initializers they read.
 */
import { OnnxDataType, type ModelProto, type NodeProto, type ValueInfoProto } from '../onnx/onnx-proto.js';

export interface OutputChoice {
  name: string;
  /** One line for the user: what was chosen, and what was dropped. */
  why: string;
}

function dims(v: ValueInfoProto): (number | string)[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue.toString()) > 0 ? Number(d.dimValue.toString()) : (d.dimParam ?? '?'),
  );
}

function describe(v: ValueInfoProto): string {
  return `'${v.name}' [${dims(v).join(', ')}]`;
}

/** Names of every tensor `name` is computed from (not including itself). */
function ancestorsOf(name: string, producer: Map<string, NodeProto>): Set<string> {
  const seen = new Set<string>();
  const stack = [...(producer.get(name)?.input ?? [])];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (!t || seen.has(t)) continue;
    seen.add(t);
    stack.push(...(producer.get(t)?.input ?? []));
  }
  return seen;
}

export function chooseOutput(model: ModelProto, requested?: string): OutputChoice {
  const outputs = model.graph?.output ?? [];
  const listed = outputs.map(describe).join(', ');
  if (requested !== undefined) {
    if (!outputs.some((o) => o.name === requested)) throw new Error(`--output '${requested}' is not an output of the model; its outputs are ${listed}`);
    const dropped = outputs.filter((o) => o.name !== requested);
    return { name: requested, why: `answer: output '${requested}' (--output)${dropped.length > 0 ? `; dropped ${dropped.map(describe).join(', ')}` : ''}` };
  }
  if (outputs.length === 1) return { name: outputs[0]!.name!, why: `answer: the model's only output ${describe(outputs[0]!)}` };
  const producer = new Map<string, NodeProto>();
  for (const node of model.graph?.node ?? []) for (const out of node.output ?? []) producer.set(out, node);
  let candidates = outputs.filter((o) => {
    const d = dims(o);
    return o.type?.tensorType?.elemType === OnnxDataType.FLOAT && d.length === 2 && (typeof d[1] !== 'number' || d[1] > 1);
  });
  const names = () => new Set(candidates.map((c) => c.name!));
  // probabilities of another candidate give way to it
  candidates = candidates.filter((c) => {
    const node = producer.get(c.name!);
    return !(node && (node.opType === 'Softmax' || node.opType === 'LogSoftmax') && names().has(node.input?.[0] ?? ''));
  });
  // features under another candidate give way to it
  const feeding = new Set(candidates.flatMap((c) => [...ancestorsOf(c.name!, producer)]));
  candidates = candidates.filter((c) => !feeding.has(c.name!));
  if (candidates.length !== 1) {
    const which = candidates.length === 0 ? 'none is a float [N, classes] tensor' : `${candidates.map(describe).join(' and ')} could each be the answer`;
    throw new Error(`the model has ${outputs.length} outputs (${listed}) and ${which}; choose the logits with --output NAME`);
  }
  const chosen = candidates[0]!;
  const dropped = outputs.filter((o) => o !== chosen);
  return {
    name: chosen.name!,
    why: `answer: output ${describe(chosen)}, the model's logits by its graph; dropped ${dropped.map(describe).join(', ')} (choose another with --output)`,
  };
}

/** Keeps only `output`, the nodes it is computed by, and the initializers and inputs they read. */
export function pruneToOutput(model: ModelProto, output: string): void {
  const graph = model.graph!;
  const producer = new Map<string, NodeProto>();
  for (const node of graph.node ?? []) for (const out of node.output ?? []) producer.set(out, node);
  const needed = ancestorsOf(output, producer);
  needed.add(output);
  graph.node = (graph.node ?? []).filter((n) => (n.output ?? []).some((o) => needed.has(o)));
  graph.output = (graph.output ?? []).filter((o) => o.name === output);
  graph.initializer = (graph.initializer ?? []).filter((t) => needed.has(t.name ?? ''));
  // NOTE: older exporters list initializers among the inputs too; an input nothing reads goes.
  graph.input = (graph.input ?? []).filter((i) => needed.has(i.name ?? ''));
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => needed.has(v.name ?? ''));
}
