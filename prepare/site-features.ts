/**
 * Extracts, in one pass per batch, the pooled features at every ramp site and the full model's
 * logits: the model gets a pooling node per site (the heads' 2×2 grid pooling + Flatten for
 * feature maps, the first token for hidden states) whose output is added to the graph outputs.
 */
import * as ort from 'onnxruntime-node';
import type { Dataset } from './dataset.js';
import { datasetFeeds } from './dataset-feeds.js';
import { encodeModel, onnx, type ModelProto } from '../onnx/onnx-proto.js';
import type { RampSite } from './ramp-sites.js';
import { gridPooling, poolingNodes } from './ramp-heads.js';

export interface SiteFeatures {
  /** Per site id: [n, dim] row-major. */
  features: Map<number, Float32Array>;
  dims: Map<number, number>;
  /** Full model's argmax per sample. */
  modelPredictions: Int32Array;
  /** Full model's logits, [n, numClasses] row-major (the teacher for distilled heads). */
  modelLogits: Float32Array;
  numClasses: number;
}

function featureModel(model: ModelProto, sites: readonly RampSite[]): ModelProto {
  const copy = onnx.ModelProto.decode(encodeModel(model));
  const graph = copy.graph!;
  for (const site of sites) {
    const out = `__feature_${site.id}`;
    if (site.kind === 'feature-map') {
      graph.node!.push(...poolingNodes(site.tensor, out, out, gridPooling(site.shape[2]!, site.shape[3]!)));
    } else {
      graph.initializer!.push(onnx.TensorProto.create({ name: `${out}_index`, dims: [], dataType: 7, rawData: new Uint8Array(8) }));
      graph.node!.push(
        onnx.NodeProto.create({
          opType: 'Gather',
          input: [site.tensor, `${out}_index`],
          output: [out],
          name: out,
          attribute: [{ name: 'axis', type: 2, i: 1 }],
        }),
      );
    }
    graph.output!.push(onnx.ValueInfoProto.create({ name: out }));
  }
  return copy;
}

/**
 * Samples per feature run: 100, or fewer so that one batch's input stays under 4 MiB. The run's
 * activations scale with it: an ImageNet-shaped ResNet-50 at 100 samples of 224×224 held over
 * 6.5 GB (onnxruntime keeps its arena at the peak); at 6 samples a run, a few hundred MB. Small
 * inputs (28×28) keep 100, where bigger batches are what makes extraction fast.
 */
export function featureBatchSize(sampleShape: readonly number[]): number {
  const sampleBytes = 4 * sampleShape.reduce((a, b) => a * Math.max(1, b), 1);
  return Math.max(1, Math.min(100, Math.floor((4 * 2 ** 20) / sampleBytes)));
}

export async function extractSiteFeatures(
  model: ModelProto,
  inputName: string,
  outputName: string,
  sites: readonly RampSite[],
  dataset: Dataset,
  range: { start: number; end: number },
  onProgress?: (done: number, total: number) => void,
): Promise<SiteFeatures> {
  const session = await ort.InferenceSession.create(encodeModel(featureModel(model, sites)), {
    intraOpNumThreads: 2,
    logSeverityLevel: 3,
    enableCpuMemArena: false,
  });
  const n = range.end - range.start;
  const chunks = new Map<number, Float32Array[]>(sites.map((s) => [s.id, []]));
  const dims = new Map<number, number>();
  const predictions = new Int32Array(n);
  const logitChunks: Float32Array[] = [];
  let numClasses = 0;
  const batch = featureBatchSize(dataset.sampleShape);
  try {
    for (let start = range.start; start < range.end; start += batch) {
      const end = Math.min(range.end, start + batch);
      const results = await session.run(datasetFeeds(dataset, inputName, start, end - start));
      for (const site of sites) {
        const t = results[`__feature_${site.id}`]!;
        dims.set(site.id, t.dims[1]!);
        chunks.get(site.id)!.push(t.data as Float32Array);
      }
      const logits = results[outputName]!;
      numClasses = logits.dims[1]!;
      const values = logits.data as Float32Array;
      logitChunks.push(values);
      for (let i = 0; i < end - start; i++) {
        let best = 0;
        for (let c = 1; c < numClasses; c++) if (values[i * numClasses + c]! > values[i * numClasses + best]!) best = c;
        predictions[start - range.start + i] = best;
      }
      onProgress?.(end - range.start, n);
    }
  } finally {
    await session.release();
  }
  const features = new Map<number, Float32Array>();
  for (const [id, parts] of chunks) {
    const all = new Float32Array(n * dims.get(id)!);
    let offset = 0;
    for (const part of parts) {
      all.set(part, offset);
      offset += part.length;
    }
    features.set(id, all);
  }
  const modelLogits = new Float32Array(n * numClasses);
  let offset = 0;
  for (const part of logitChunks) {
    modelLogits.set(part, offset);
    offset += part.length;
  }
  return { features, dims, modelPredictions: predictions, modelLogits, numClasses };
}
