/**
 * What merging survivors across batches could give at best (E3/DREX: rows left after a ramp wait
 * for the next batch's rows at the same cut, so later segments always run full batches), against
 * what compact mode does (later segments run the survivors alone, and the worker starts its next
 * action in the time freed).
 *
 * Per full batch of B rows with n_k rows alive after ramp k, compact runs segment k+1 at n_k rows:
 * T_{k+1}(n_k). Perfect merging runs the same rows at the full batch's cost per row:
 * n_k · T_{k+1}(B) / B. The ceiling is the ratio of the two totals, before merging's own costs
 * (held activations, survivors waiting for the next batch, a second planning dimension). Where a
 * segment's cost per row barely moves with the batch size, as on a CPU, there is nothing to gain.
 */
export interface MergeCeilingInputs {
  /** Segment k's run time (ms) at each measured batch size, segments in depth order. */
  segmentMs: Record<number, number>[];
  /** Fraction of all requests answered at the ramp closing each segment but the last. */
  exitFractions: number[];
  /** Compact mode: the share of exited rows that still run to the end (the tuner's sample). */
  monitorFraction: number;
  batchSize: number;
}

export interface MergeCeiling {
  batchSize: number;
  /** Expected rows alive entering each segment. */
  aliveRows: number[];
  compactMs: number;
  mergedMs: number;
  /** compactMs / mergedMs: merging's throughput ceiling over compact mode. */
  gain: number;
}

/** A segment's time at a (fractional) row count, linear between the measured sizes. */
export function interpolateMs(table: Record<number, number>, rows: number): number {
  const sizes = Object.keys(table)
    .map(Number)
    .sort((a, b) => a - b);
  if (rows <= 0) return 0;
  const below = sizes.filter((s) => s <= rows).at(-1);
  const above = sizes.find((s) => s >= rows);
  if (below === undefined) return (table[above!]! * rows) / above!; // below the smallest size: proportional
  if (above === undefined) return (table[below]! * rows) / below; // above the largest: per row as there
  if (above === below) return table[below]!;
  return table[below]! + ((table[above]! - table[below]!) * (rows - below)) / (above - below);
}

export function mergeCeiling(input: MergeCeilingInputs): MergeCeiling {
  const { segmentMs, exitFractions, monitorFraction, batchSize } = input;
  if (segmentMs.length !== exitFractions.length + 1)
    throw new Error(`${segmentMs.length} segments need ${segmentMs.length - 1} exit fractions, got ${exitFractions.length}`);
  const aliveRows = [batchSize];
  let exited = 0;
  for (const f of exitFractions) {
    exited += f;
    aliveRows.push(batchSize * (1 - (1 - monitorFraction) * exited));
  }
  let compactMs = 0;
  let mergedMs = 0;
  segmentMs.forEach((table, k) => {
    compactMs += interpolateMs(table, aliveRows[k]!);
    mergedMs += (aliveRows[k]! * interpolateMs(table, batchSize)) / batchSize;
  });
  return { batchSize, aliveRows, compactMs, mergedMs, gain: compactMs / mergedMs };
}
