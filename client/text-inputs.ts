/**
 * Text requests: clients tokenize, the serving path sees only tensors.
 *
 * Why on the client: the controller is one event loop that plans every action for every model,
 * so per-request CPU work there (tokenizing a 2,000-character e-mail takes ~50 µs) delays every
 * other request's plan; clients are many and tokenize in parallel. The request then carries
 * `input_ids` and `attention_mask` of its own length [1, T] (no padding on the wire); the
 * controller pads each batch to a sequence bucket.
 */
import { dirname, join } from 'node:path';
import type { ModelEntry } from '../shared/model-manifest.js';
import { bytesOf, type Tensor } from '../shared/tensor.js';
import { WordTokenizer } from '../text/word-tokenizer.js';

/** The tokenizer a text model package ships (manifest `sequence.tokenizer`), or undefined. */
export function packageTokenizer(entry: ModelEntry): WordTokenizer | undefined {
  const file = entry.manifest.sequence?.tokenizer;
  return file ? WordTokenizer.load(join(dirname(entry.onnxPath), file)) : undefined;
}

/** One request's inputs for `text`: token ids and an all-ones mask, int64 [1, T]. */
export function textInputs(tokenizer: WordTokenizer, text: string): Tensor[] {
  const { ids } = tokenizer.encode(text);
  const shape = [1, ids.length];
  const idValues = BigInt64Array.from(ids, (id) => BigInt(id));
  const mask = new BigInt64Array(ids.length).fill(1n);
  const names = tokenizer.file.inputNames;
  return [
    { name: names.ids, dtype: 'int64', shape, data: bytesOf(idValues) },
    { name: names.mask, dtype: 'int64', shape, data: bytesOf(mask) },
  ];
}
