/**
 * Dataset samples as onnxruntime feeds: the primary input (pixels, or token ids) plus, for text,
 * the attention mask. `length` trims token rows (every row must fit; see text/token-tensors.ts).
 */
import * as ort from 'onnxruntime-node';
import type { Dataset } from './dataset.js';

export function datasetFeeds(dataset: Dataset, inputName: string, start: number, count: number): Record<string, ort.Tensor> {
  const size = dataset.inputs.length / dataset.numSamples;
  const n = Math.min(count, dataset.numSamples - start);
  const range = [start * size, (start + n) * size] as const;
  const shape = [n, ...dataset.sampleShape];
  if (dataset.inputs instanceof Float32Array) return { [inputName]: new ort.Tensor('float32', dataset.inputs.slice(...range), shape) };
  const feeds: Record<string, ort.Tensor> = { [inputName]: new ort.Tensor('int64', dataset.inputs.slice(...range), shape) };
  if (dataset.text) feeds[dataset.text.maskInput] = new ort.Tensor('int64', dataset.text.mask.slice(...range), shape);
  return feeds;
}
