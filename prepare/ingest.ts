/**
 * Ingestion of a plain ONNX classifier into the model repository: validate the graph, make the
 * batch dimension dynamic, check on real runs that batching gives the same rows as batch 1, and
 * write `<out>/<name>/model.onnx` with its `manifest.json`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelManifest } from '../shared/model-manifest.js';
import type { DType, TensorSpec } from '../shared/tensor.js';
import { dataInputNames, makeBatchDynamic, type BatchRewriteReport } from './batch-dimension.js';
import { defaultDomainOpset, needsOpsetUpgrade, upgradeOpset } from '../onnx/opset-upgrade.js';
import { decodeModel, encodeModel, type ModelProto, type ValueInfoProto } from '../onnx/onnx-proto.js';

/** Operators whose semantics the segmenting and batching logic cannot reason about. */
const CONTROL_FLOW_OPS = new Set(['If', 'Loop', 'Scan']);

const ELEM_TYPES: Record<number, DType> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };

export interface IngestOptions {
  inputPath: string;
  name: string;
  outDir: string;
  batchSizes: number[];
  source?: Record<string, unknown>;
}

export interface IngestReport {
  manifest: ModelManifest;
  rewrite: BatchRewriteReport;
  /** Max |batched − batch-1| over the outputs of the check run. */
  maxAbsDiff: number;
}

function tensorSpec(v: ValueInfoProto): TensorSpec {
  const tensorType = v.type?.tensorType;
  const dtype = ELEM_TYPES[tensorType?.elemType ?? 0];
  if (!dtype) throw new Error(`tensor '${v.name}' has unsupported element type ${tensorType?.elemType}`);
  const dims = tensorType?.shape?.dim ?? [];
  const shape = dims.map((d, i) => {
    if (i === 0) return -1;
    const value = d.dimValue === null || d.dimValue === undefined ? NaN : Number(d.dimValue.toString());
    if (!(value > 0))
      throw new Error(
        `tensor '${v.name}' has a dynamic non-batch dimension ${i} (${d.dimParam ?? '?'}); only the batch ` +
          `may vary (a text model with a sequence axis is packaged by \`escapement prepare --tokenizer\`)`,
      );
    return value;
  });
  return { name: v.name ?? '', dtype, shape };
}

export function validateGraph(model: ModelProto): void {
  const graph = model.graph;
  if (!graph || (graph.node ?? []).length === 0) throw new Error('the model has no graph nodes');
  for (const node of graph.node ?? []) {
    if (CONTROL_FLOW_OPS.has(node.opType ?? '')) {
      throw new Error(
        `node '${node.name || node.output?.[0]}' is control flow (${node.opType}), which is not supported: ramps need one static graph to cut. ` +
          'Export the model traced for a fixed input shape (torch.onnx.export with a traced module, tf2onnx without tf.cond/while), or fold the branch away (onnxsim)',
      );
    }
  }
  if (dataInputNames(model).length === 0) throw new Error('the model has no data input');
}

/**
 * Why onnxruntime refused a model, naming the node(s) whose op it lacks where its message names an
 * op (`dom:Op(-1) is not a registered function/op`, `Could not find an implementation for Op(13)
 * node with name 'x'`), and what the user can do about it.
 */
export function runtimeRefusal(model: ModelProto, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const op = /(?:([\w.]+):)?(\w+)\(-?\d+\) is not a registered function\/op/.exec(message) ?? /implementation for (\w+)\(\d+\) node/.exec(message);
  const opType = op ? (op.length === 3 ? op[2] : op[1]) : undefined;
  const nodes = opType ? (model.graph?.node ?? []).filter((n) => n.opType === opType) : [];
  if (nodes.length === 0) return `onnxruntime cannot run this model: ${message}`;
  const names =
    nodes
      .slice(0, 3)
      .map((n) => `'${n.name || n.output?.[0]}'`)
      .join(', ') + (nodes.length > 3 ? ` and ${nodes.length - 3} more` : '');
  const domain = nodes[0]!.domain ? `${nodes[0]!.domain}:` : '';
  return (
    `onnxruntime (CPU) has no kernel for ${domain}${opType}, used by node ${names} (${message.trim()}). ` +
    'Re-export the model with standard ONNX ops only (no custom ops or plugins; for PyTorch, an opset onnxruntime supports), or replace that op before preparing it'
  );
}

function randomFeeds(specs: TensorSpec[], batchSize: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 12345;
  for (const spec of specs) {
    if (spec.dtype !== 'float32') throw new Error(`check run supports float32 inputs only ('${spec.name}' is ${spec.dtype})`);
    const shape = [batchSize, ...spec.shape.slice(1)];
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[i] = (seed / 2 ** 32) * 255;
    }
    feeds[spec.name] = new ort.Tensor('float32', data, shape);
  }
  return feeds;
}

/** Runs the largest batch and each of its rows alone; returns the max abs difference. */
async function checkBatching(bytes: Uint8Array, inputs: TensorSpec[], outputs: TensorSpec[], batchSize: number): Promise<number> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const feeds = randomFeeds(inputs, batchSize);
    const batched = await session.run(feeds);
    let maxAbsDiff = 0;
    for (let row = 0; row < batchSize; row++) {
      const single: Record<string, ort.Tensor> = {};
      for (const spec of inputs) {
        const t = feeds[spec.name]!;
        const rowLen = (t.data as Float32Array).length / batchSize;
        single[spec.name] = new ort.Tensor('float32', (t.data as Float32Array).slice(row * rowLen, (row + 1) * rowLen), [1, ...t.dims.slice(1)]);
      }
      const alone = await session.run(single);
      for (const spec of outputs) {
        const a = alone[spec.name]!.data as Float32Array;
        const b = batched[spec.name]!.data as Float32Array;
        for (let i = 0; i < a.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i]! - b[row * a.length + i]!));
      }
    }
    return maxAbsDiff;
  } finally {
    await session.release();
  }
}

export async function ingestModel(options: IngestOptions): Promise<IngestReport> {
  const original = readFileSync(options.inputPath);
  let model = decodeModel(original);
  if (needsOpsetUpgrade(model)) model = decodeModel(upgradeOpset(original, defaultDomainOpset(model)!).bytes);
  validateGraph(model);
  const rewrite = makeBatchDynamic(model);
  const graph = model.graph!;
  const dataInputs = new Set(dataInputNames(model));
  const inputs = (graph.input ?? []).filter((i) => dataInputs.has(i.name ?? '')).map(tensorSpec);
  const outputs = (graph.output ?? []).map(tensorSpec);
  const bytes = encodeModel(model);
  const maxAbsDiff = await checkBatching(bytes, inputs, outputs, options.batchSizes.at(-1)!);
  if (maxAbsDiff > 1e-3) throw new Error(`batched outputs differ from batch-1 outputs by ${maxAbsDiff}: the batch rewrite is wrong for this model`);
  const manifest: ModelManifest = {
    schemaVersion: 1,
    name: options.name,
    file: 'model.onnx',
    inputs,
    outputs,
    batchSizes: options.batchSizes,
    ...(options.source ? { source: options.source } : {}),
  };
  const folder = join(options.outDir, options.name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'model.onnx'), bytes);
  writeFileSync(join(folder, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { manifest, rewrite, maxAbsDiff };
}
