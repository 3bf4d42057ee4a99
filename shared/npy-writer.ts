/** Writes NumPy .npy files (format 1.0, little-endian, C order) for the few dtypes we produce. */
import { writeFileSync } from 'node:fs';

const DESCR = { float32: '<f4', int64: '<i8', int32: '<i4' } as const;

export function npyBytes(values: Float32Array | BigInt64Array | Int32Array, shape: readonly number[]): Buffer {
  const dtype = values instanceof Float32Array ? 'float32' : values instanceof BigInt64Array ? 'int64' : 'int32';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // The header (magic + 4 bytes + text + newline) is padded with spaces to a multiple of 64.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
}

export function writeNpy(path: string, values: Float32Array | BigInt64Array | Int32Array, shape: readonly number[]): void {
  writeFileSync(path, npyBytes(values, shape));
}
