/**
 * Token ids as model inputs: rows padded with [PAD] to a common length, and the attention mask
 * that tells the model which positions are real. int64, as the exported ONNX graph expects.
 */
import { PAD_ID } from './word-tokenizer.js';

export interface TokenTensors {
  numRows: number;
  length: number;
  /** Row-major [numRows, length]. */
  ids: BigInt64Array;
  mask: BigInt64Array;
}

/** Pads (never cuts) each row to `length`; `length` must hold the longest row. */
export function padTokenRows(rows: readonly (readonly number[])[], length: number): TokenTensors {
  const ids = new BigInt64Array(rows.length * length).fill(BigInt(PAD_ID));
  const mask = new BigInt64Array(rows.length * length);
  rows.forEach((row, r) => {
    if (row.length > length) throw new RangeError(`row ${r} has ${row.length} tokens, more than the padded length ${length}`);
    for (let t = 0; t < row.length; t++) {
      ids[r * length + t] = BigInt(row[t]!);
      mask[r * length + t] = 1n;
    }
  });
  return { numRows: rows.length, length, ids, mask };
}
