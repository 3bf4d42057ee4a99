/**
 * Every ramp's confidence and prediction on a run's inputs, computed offline in onnxruntime: the
 * package's `model.onnx` with the ramps' site tensors as extra outputs, then each ramp's head on
 * its site's tensor. What an oracle needs to pick thresholds in hindsight (compare --oracle),
 * whatever the served run's thresholds let each ramp see.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeModel, encodeModel, onnx } from '../onnx/onnx-proto.js';
import type { ModelEntry } from '../shared/model-manifest.js';
import type { Tensor } from '../shared/tensor.js';

export interface RampConfidences {
  siteIds: number[];
  /** Per ramp (siteIds order), per request: max softmax probability and argmax. */
  confidences: Float32Array[];
  predictions: Int32Array[];
  /** The full model's argmax per request. */
  finalPredictions: Int32Array;
}

function toOrt(t: Tensor): ort.Tensor {
  const bytes = new Uint8Array(t.data).slice();
  if (t.dtype === 'int64') return new ort.Tensor('int64', new BigInt64Array(bytes.buffer), t.shape);
  if (t.dtype !== 'float32') throw new Error(`ramp confidences take float32 or int64 inputs, not ${t.dtype}`);
  return new ort.Tensor('float32', new Float32Array(bytes.buffer), t.shape);
}

function argmaxRows(values: Float32Array, rows: number, width: number, onRow: (row: number, best: number, max: number) => void): void {
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < width; c++) if (values[r * width + c]! > values[r * width + best]!) best = c;
    onRow(r, best, values[r * width + best]!);
  }
}

/** Runs requests 0..numRequests-1 one at a time (text requests differ in length). */
export async function rampConfidences(
  entry: ModelEntry,
  siteIds: readonly number[],
  inputsFor: (i: number) => Tensor[],
  numRequests: number,
): Promise<RampConfidences> {
  const ee = entry.manifest.earlyExit;
  if (!ee) throw new Error(`${entry.manifest.name} has no early-exit package`);
  const folder = dirname(entry.onnxPath);
  const sites = siteIds.map((id) => {
    const site = ee.sites.find((s) => s.id === id);
    const ramp = ee.ramps.find((r) => r.siteId === id);
    if (!site || !ramp) throw new Error(`${entry.manifest.name} has no ramp at site ${id}`);
    return { site, ramp };
  });
  const model = decodeModel(readFileSync(join(folder, 'model.onnx')));
  const graph = model.graph!;
  for (const { site } of sites)
    if (!(graph.output ?? []).some((o) => o.name === site.tensor)) graph.output!.push(onnx.ValueInfoProto.create({ name: site.tensor }));
  const options = { intraOpNumThreads: 1, logSeverityLevel: 3 as const };
  const whole = await ort.InferenceSession.create(encodeModel(model), options);
  const heads = await Promise.all(sites.map(({ ramp }) => ort.InferenceSession.create(join(folder, ramp.file), options)));
  const result: RampConfidences = {
    siteIds: [...siteIds],
    confidences: sites.map(() => new Float32Array(numRequests)),
    predictions: sites.map(() => new Int32Array(numRequests)),
    finalPredictions: new Int32Array(numRequests),
  };
  try {
    for (let i = 0; i < numRequests; i++) {
      const feeds = Object.fromEntries(inputsFor(i).map((t) => [t.name, toOrt(t)]));
      const out = await whole.run(feeds);
      const logits = out[ee.finalOutput]!;
      argmaxRows(logits.data as Float32Array, 1, logits.dims[1]!, (_, best) => (result.finalPredictions[i] = best));
      for (const [r, { site, ramp }] of sites.entries()) {
        const probabilities = (await heads[r]!.run({ [site.tensor]: out[site.tensor]! }))[ramp.outputName]!;
        argmaxRows(probabilities.data as Float32Array, 1, probabilities.dims[1]!, (_, best, max) => {
          result.predictions[r]![i] = best;
          result.confidences[r]![i] = max;
        });
      }
    }
  } finally {
    await whole.release();
    for (const h of heads) await h.release();
  }
  return result;
}
