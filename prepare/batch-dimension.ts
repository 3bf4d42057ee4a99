/**
 * Makes a model's batch dimension dynamic where the exporter hard-wired it.
 *
 * Many exported classifiers fix the batch at 1 in two places: the graph input/output shapes and
 * the constant shape of a Reshape that flattens features (MNIST v1.2: input [1,1,28,28] and
 * Reshape to [1,256]). The rewrite:
 *   1. sets dim 0 of every data input and every output to the symbol `N`;
 *   2. for each Reshape whose data operand depends on a data input and whose target shape is a
 *      constant initializer starting with the old batch size, replaces that leading entry by -1;
 *   3. drops intermediate value_info, whose stale batch-1 shapes would conflict at run time.
 * Reshapes of weights (operands that depend on no data input) are left alone. The result must
 * still be checked on real inputs (see the ingestion test): a Reshape that folds the batch into
 * another axis cannot be rewritten this way and is reported by the runtime's shape check.
 */
import type { ModelProto, ValueInfoProto } from '../onnx/onnx-proto.js';
import { readInt64s, writeInt64s } from '../onnx/onnx-proto.js';

export const BATCH_DIM_PARAM = 'N';

export interface BatchRewriteReport {
  numInputsRewritten: number;
  numOutputsRewritten: number;
  /** Names of Reshape nodes whose constant shape was changed. */
  reshapesRewritten: string[];
}

export function dataInputNames(model: ModelProto): string[] {
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  return (graph.input ?? []).map((i) => i.name ?? '').filter((n) => !initializers.has(n));
}

/** Tensors whose value depends on at least one data input. */
function dataDependentTensors(model: ModelProto): Set<string> {
  const graph = model.graph!;
  const dependent = new Set(dataInputNames(model));
  for (const node of graph.node ?? []) {
    if ((node.input ?? []).some((name) => dependent.has(name))) for (const out of node.output ?? []) dependent.add(out);
  }
  return dependent;
}

export function makeBatchDynamic(model: ModelProto): BatchRewriteReport {
  const graph = model.graph;
  if (!graph) throw new Error('model has no graph');
  const report: BatchRewriteReport = { numInputsRewritten: 0, numOutputsRewritten: 0, reshapesRewritten: [] };
  const dataInputs = new Set(dataInputNames(model));

  // 1. symbolic batch dimension on data inputs and outputs, remembering the fixed value
  let fixedBatch: number | undefined;
  const rewriteDim0 = (valueInfo: ValueInfoProto): boolean => {
    const dims = valueInfo.type?.tensorType?.shape?.dim;
    const first = dims?.[0];
    if (!first) return false;
    if (first.dimValue !== undefined && first.dimValue !== null && Number(first.dimValue.toString()) > 0) {
      fixedBatch ??= Number(first.dimValue.toString());
    }
    first.dimValue = null;
    first.dimParam = BATCH_DIM_PARAM;
    return true;
  };
  for (const input of graph.input ?? []) if (dataInputs.has(input.name ?? '') && rewriteDim0(input)) report.numInputsRewritten++;
  for (const output of graph.output ?? []) if (rewriteDim0(output)) report.numOutputsRewritten++;

  // 2. Reshape constants that carry the old batch size
  if (fixedBatch !== undefined) {
    const dependent = dataDependentTensors(model);
    const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
    for (const node of graph.node ?? []) {
      const [dataName = '', shapeName = ''] = node.input ?? [];
      if (node.opType !== 'Reshape' || !dependent.has(dataName)) continue;
      const shapeInit = initializers.get(shapeName);
      if (!shapeInit) continue;
      const target = readInt64s(shapeInit);
      if (target[0] === fixedBatch) {
        writeInt64s(shapeInit, [-1, ...target.slice(1)]);
        report.reshapesRewritten.push(node.name || node.output?.[0] || '?');
      }
    }
  }

  // 3. stale intermediate shapes
  graph.valueInfo = [];
  return report;
}
