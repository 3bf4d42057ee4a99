/**
 * Text models pad each batch to one of a few sequence lengths ("buckets"), so that a handful of
 * profiled shapes cover every request and short texts are not padded to the longest.
 */

/** The smallest bucket that holds `length` tokens, or undefined when none does. */
export function sequenceBucket(buckets: readonly number[], length: number): number | undefined {
  for (const b of buckets) if (b >= length) return b;
  return undefined;
}
