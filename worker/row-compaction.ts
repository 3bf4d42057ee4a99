/**
 * Row bookkeeping for a batch that shrinks as requests exit (compact mode): which original batch
 * row each current row is, and slicing tensors down to the rows that continue.
 */
export class RowSet {
  /** Original row index of each current row. */
  private rows: number[];

  constructor(numRows: number) {
    this.rows = Array.from({ length: numRows }, (_, i) => i);
  }

  get size(): number {
    return this.rows.length;
  }

  originalRow(current: number): number {
    return this.rows[current]!;
  }

  originalRows(): readonly number[] {
    return this.rows;
  }

  /** Keeps the current rows for which `keep(current)` holds; returns the kept current indices. */
  retain(keep: (current: number) => boolean): number[] {
    const kept: number[] = [];
    const next: number[] = [];
    this.rows.forEach((original, current) => {
      if (keep(current)) {
        kept.push(current);
        next.push(original);
      }
    });
    this.rows = next;
    return kept;
  }
}

/** Copies the given rows (first dimension) of a row-major tensor into a new, smaller one. */
export function sliceRows<T extends Float32Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Float64Array>(
  data: T,
  numRows: number,
  keep: readonly number[],
): T {
  const rowLength = data.length / numRows;
  const out = new (data.constructor as new (n: number) => T)(keep.length * rowLength);
  keep.forEach((row, i) => out.set(data.subarray(row * rowLength, (row + 1) * rowLength) as never, i * rowLength));
  return out;
}
