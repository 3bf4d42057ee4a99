/**
 * `escapement inspect MODEL.onnx`: what a model is and what `prepare` would make of it, without
 * a dataset and without training: inputs, outputs and opsets; which output would be the answer
 * (output-choice.ts); the ramp sites, found as prepare finds them (one probe run on random
 * inputs), with their shapes and relative depth; and the first reason prepare would refuse it.
 */
import * as ort from 'onnxruntime-node';
import { dataInputNames, makeBatchDynamic } from './batch-dimension.js';
import { defaultDomainOpset, needsOpsetUpgrade, upgradeOpset } from '../onnx/opset-upgrade.js';
import { runtimeRefusal, validateGraph } from './ingest.js';
import { castUint8Inputs } from './input-cast.js';
import { decodeModel, encodeModel, type ModelProto, type ValueInfoProto } from '../onnx/onnx-proto.js';
import { chooseOutput, pruneToOutput } from './output-choice.js';
import { findRampSites } from './ramp-sites.js';

const ELEM_TYPES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64' };

export interface TensorInfo {
  name: string;
  dtype: string;
  /** Dimensions; a dynamic one by its name (or '?'). */
  dims: (number | string)[];
}

export interface SiteInfo {
  siteId: number;
  /** The node whose output the cut follows. */
  producer: string;
  kind: string;
  /** Shape with the batch dimension as -1. */
  shape: number[];
  /** Position of the cut among the graph's nodes, 0..1. */
  relativeDepth: number;
}

export interface ModelInspection {
  path: string;
  producer: string;
  irVersion: number;
  opsets: { domain: string; version: number }[];
  numNodes: number;
  weightsBytes: number;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** What prepare would serve as the answer, or why it cannot tell. */
  answer: string;
  sites: SiteInfo[];
  /** The first reason prepare would refuse the model (undefined: it would go on to train ramps). */
  refusal?: string;
  /** What prepare would do, step by step. */
  plan: string[];
}

function tensorInfo(v: ValueInfoProto): TensorInfo {
  const t = v.type?.tensorType;
  const dims = (t?.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue.toString()) > 0 ? Number(d.dimValue.toString()) : d.dimParam || '?',
  );
  return { name: v.name ?? '', dtype: ELEM_TYPES[t?.elemType ?? 0] ?? `type ${t?.elemType}`, dims };
}

function weightsBytesOf(model: ModelProto): number {
  let bytes = 0;
  for (const t of model.graph?.initializer ?? []) bytes += t.rawData?.byteLength ?? 4 * (t.floatData?.length ?? 0) + 8 * (t.int64Data?.length ?? 0);
  return bytes;
}

/** Random inputs at batch 2 for the probe run (float inputs only; prepare feeds real data). */
function probeInputs(model: ModelProto, names: string[]) {
  return names.map((name) => {
    const info = tensorInfo(model.graph!.input!.find((i) => i.name === name)!);
    if (info.dtype !== 'float32')
      throw new Error(`input '${name}' is ${info.dtype}; inspect probes float32 inputs only (prepare reads such inputs from the dataset)`);
    const shape = info.dims.map((d, i) => (i === 0 ? 2 : typeof d === 'number' ? d : NaN));
    if (shape.some((d) => !Number.isFinite(d)))
      throw new Error(`input '${name}' has a dynamic dimension besides the batch; prepare needs it fixed, or --tokenizer for a text model`);
    const size = shape.reduce((a, b) => a * b, 1);
    return { name, shape, data: Float32Array.from({ length: size }, (_, i) => ((i * 2654435761) % 1000) / 1000) };
  });
}

export async function inspectModel(path: string, bytes: Uint8Array, output?: string): Promise<ModelInspection> {
  let model = decodeModel(bytes);
  const graph = model.graph;
  const inspection: ModelInspection = {
    path,
    producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim() || 'unknown',
    irVersion: Number(model.irVersion?.toString() ?? 0),
    opsets: (model.opsetImport ?? []).map((o) => ({ domain: o.domain || 'ai.onnx', version: Number(o.version?.toString() ?? 0) })),
    numNodes: graph?.node?.length ?? 0,
    weightsBytes: weightsBytesOf(model),
    inputs: (graph?.input ?? []).filter((i) => dataInputNames(model).includes(i.name ?? '')).map(tensorInfo),
    outputs: (graph?.output ?? []).map(tensorInfo),
    answer: '',
    sites: [],
    plan: [],
  };
  const refuse = (reason: string): ModelInspection => ({ ...inspection, refusal: reason });
  if (needsOpsetUpgrade(model)) {
    // Converted here too, so that sites and kernels are judged on what prepare would serve.
    try {
      const upgrade = upgradeOpset(bytes, defaultDomainOpset(model)!);
      model = decodeModel(upgrade.bytes);
      inspection.plan.push(`upgrade opset ${upgrade.fromOpset} to ${upgrade.toOpset} with ${upgrade.converter}`);
    } catch (err) {
      return refuse((err as Error).message);
    }
  }
  try {
    validateGraph(model);
  } catch (err) {
    return refuse((err as Error).message);
  }
  let answer: string;
  try {
    const choice = chooseOutput(model, output);
    answer = choice.name;
    inspection.answer = choice.why;
  } catch (err) {
    inspection.answer = (err as Error).message;
    return refuse((err as Error).message);
  }
  if ((graph!.output ?? []).length > 1) pruneToOutput(model, answer);
  const batch = makeBatchDynamic(model);
  inspection.plan.push(`serve output '${answer}' as the answer`);
  if (batch.numInputsRewritten > 0 || batch.reshapesRewritten.length > 0)
    inspection.plan.push(`make the batch dimension dynamic (${batch.numInputsRewritten} input(s), ${batch.reshapesRewritten.length} reshape(s) rewritten)`);
  for (const name of castUint8Inputs(model)) inspection.plan.push(`take input '${name}' (uint8) as float32 pixel values 0-255 and cast them back inside`);
  try {
    const session = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3, intraOpNumThreads: 1 });
    await session.release();
  } catch (err) {
    return refuse(runtimeRefusal(model, err));
  }
  const dataInputs = dataInputNames(model);
  if (dataInputs.length !== 1)
    return refuse(
      `the model has ${dataInputs.length} data inputs (${dataInputs.join(', ')}): a text model with token ids and a mask is prepared with --tokenizer; inspect does not probe it`,
    );
  let found;
  try {
    found = await findRampSites(model, probeInputs(model, dataInputs), dataInputs[0]);
  } catch (err) {
    return refuse((err as Error).message);
  }
  const numNodes = Math.max(1, (model.graph!.node ?? []).length);
  inspection.sites = found.sites.map((s) => ({
    siteId: s.id,
    producer: s.producerName,
    kind: s.kind,
    shape: s.shape,
    relativeDepth: (s.afterNode + 1) / numNodes,
  }));
  if (inspection.sites.length === 0)
    return refuse(
      'no usable ramp site: no single-tensor cut with a [N,C,H,W] or [N,T,D] activation (a plain MLP, or a graph whose branches never merge into one tensor)',
    );
  inspection.plan.push(
    `cut it into a chain of segments at ${inspection.sites.length} site(s) and check on the dataset that the chain reproduces the model`,
    "train a ramp head per site on the first 10 % of the dataset (1:9 train:validation), distilled from the model's logits",
    "profile the model, every segment and every head at batch sizes 1, 2, 4, 8, 16; choose at most 3 ramps within 5 % of the model's latency; set thresholds for 99 % agreement",
  );
  return inspection;
}

export function formatInspection(i: ModelInspection): string {
  const tensor = (t: TensorInfo) => `  ${t.name}: ${t.dtype} [${t.dims.join(', ')}]`;
  const lines = [
    `${i.path}: ${i.numNodes} nodes, ${(i.weightsBytes / 2 ** 20).toFixed(1)} MiB of weights, IR ` +
      `${i.irVersion}, opsets ${i.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}, made by ${i.producer}`,
    'inputs:',
    ...i.inputs.map(tensor),
    'outputs:',
    ...i.outputs.map(tensor),
    i.answer,
  ];
  if (i.sites.length > 0) {
    lines.push('ramp sites:');
    for (const s of i.sites)
      lines.push(`  site ${s.siteId}: after ${s.producer}, ${s.kind} [${s.shape.join(', ')}], at ${(100 * s.relativeDepth).toFixed(0)} % of the graph`);
  }
  if (i.refusal) lines.push(`prepare would refuse it: ${i.refusal}`);
  else lines.push('prepare would:', ...i.plan.map((p, k) => `  ${k + 1}. ${p}`));
  return lines.join('\n');
}
