/**
 * Duration estimates are kept per (model, worker, key). For fixed-shape models the key is the
 * batch size; for text models a batch's cost also depends on its padded sequence length, so the
 * key packs both: (sequence bucket, batch size) -> bucket × 65,536 + batch size.
 */
const SEQUENCE_STRIDE = 65_536;

export function profileKey(batchSize: number, seqLength = 0): number {
  return seqLength > 0 ? seqLength * SEQUENCE_STRIDE + batchSize : batchSize;
}
