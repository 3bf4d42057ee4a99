/**
 * A read-only index over an ONNX graph: who produces and who consumes each tensor, which tensors
 * are constants (initializers, Constant nodes, anything computed only from them) and which depend
 * on the data inputs. Graph surgery (cut finding, segmenting, ramp insertion) is built on it.
 */
import type { GraphProto, ModelProto, NodeProto } from './onnx-proto.js';

export class GraphIndex {
  readonly graph: GraphProto;
  readonly nodes: NodeProto[];
  /** Tensor name -> index of the node producing it. Graph inputs have no producer. */
  readonly producer = new Map<string, number>();
  /** Tensor name -> indices of the nodes consuming it. */
  readonly consumers = new Map<string, number[]>();
  readonly initializerNames: Set<string>;
  /** Graph inputs that are not initializers. */
  readonly dataInputs: string[];
  readonly outputNames: string[];
  /** Tensors whose value depends on the primary input (the activations). */
  readonly mainTensors = new Set<string>();
  /** Tensors that depend on other data inputs only (attention masks, position ids, ...). */
  readonly sideTensors = new Set<string>();

  constructor(
    model: ModelProto,
    /** The data input activations flow from; the others are side inputs. Default: the first. */
    readonly primaryInput?: string,
  ) {
    if (!model.graph) throw new Error('the model has no graph');
    this.graph = model.graph;
    this.nodes = model.graph.node ?? [];
    this.initializerNames = new Set((this.graph.initializer ?? []).map((t) => t.name ?? ''));
    this.dataInputs = (this.graph.input ?? []).map((i) => i.name ?? '').filter((n) => !this.initializerNames.has(n));
    this.outputNames = (this.graph.output ?? []).map((o) => o.name ?? '');
    this.nodes.forEach((node, i) => {
      for (const out of node.output ?? []) if (out) this.producer.set(out, i);
      for (const inp of node.input ?? []) {
        if (!inp) continue;
        const list = this.consumers.get(inp) ?? [];
        list.push(i);
        this.consumers.set(inp, list);
      }
    });
    const primary = primaryInput ?? this.dataInputs[0];
    if (!primary || !this.dataInputs.includes(primary)) throw new Error(`primary input '${primary}' is not a data input of the graph`);
    this.primaryInput = primary;
    this.mainTensors.add(primary);
    for (const side of this.dataInputs) if (side !== primary) this.sideTensors.add(side);
    // NOTE: nodes are in topological order (an ONNX requirement), so one forward pass suffices.
    for (const node of this.nodes) {
      const inputs = (node.input ?? []).filter(Boolean);
      const outputs = (node.output ?? []).filter(Boolean);
      if (inputs.some((n) => this.mainTensors.has(n))) for (const o of outputs) this.mainTensors.add(o);
      else if (inputs.some((n) => this.sideTensors.has(n))) for (const o of outputs) this.sideTensors.add(o);
    }
  }

  nodeName(index: number): string {
    const node = this.nodes[index]!;
    return node.name || `${node.opType}#${index}`;
  }

  /** Indices of the nodes every graph output depends on (dead branches excluded). */
  liveNodes(): Set<number> {
    const live = new Set<number>();
    const stack = [...this.outputNames];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const tensor = stack.pop()!;
      if (seen.has(tensor)) continue;
      seen.add(tensor);
      const p = this.producer.get(tensor);
      if (p === undefined || live.has(p)) continue;
      live.add(p);
      for (const inp of this.nodes[p]!.input ?? []) if (inp) stack.push(inp);
    }
    return live;
  }

  /**
   * The nodes needed to compute `outputs` from `inputs` (plus constants), in graph order. Throws
   * if some output depends on a data tensor outside `inputs`: the cut is not a cut.
   */
  subgraphNodes(inputs: readonly string[], outputs: readonly string[]): number[] {
    const boundary = new Set(inputs);
    const needed = new Set<number>();
    const stack = [...outputs];
    const seen = new Set<string>();
    while (stack.length > 0) {
      const tensor = stack.pop()!;
      if (seen.has(tensor) || boundary.has(tensor) || this.initializerNames.has(tensor)) continue;
      seen.add(tensor);
      const p = this.producer.get(tensor);
      if (p === undefined) {
        throw new Error(`tensor '${tensor}' is needed but is neither produced inside the segment nor one of its inputs (${inputs.join(', ')})`);
      }
      if (needed.has(p)) continue;
      needed.add(p);
      for (const inp of this.nodes[p]!.input ?? []) if (inp) stack.push(inp);
    }
    return [...needed].sort((a, b) => a - b);
  }
}
