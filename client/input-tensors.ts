/**
 * Request inputs for the CLI, the demo and benchmarks: random tensors shaped by a model's
 * manifest, or a file (ONNX TensorProto `.pb`, raw little-endian float32 `.f32`, or a JSON array
 * of numbers).
 */
import { readFileSync } from 'node:fs';
import type { ModelManifest } from '../shared/model-manifest.js';
import { byteLength, bytesOf, type Tensor, type TensorSpec } from '../shared/tensor.js';
import { decodeTensor } from '../onnx/onnx-proto.js';

function rowShape(spec: TensorSpec): number[] {
  return [1, ...spec.shape.slice(1)];
}

/** One request's inputs with values uniform in [0, scale), from a seeded generator. */
export function randomInputs(manifest: ModelManifest, seed: number, scale = 255): Tensor[] {
  let state = seed >>> 0 || 1;
  return manifest.inputs.map((spec) => {
    if (spec.dtype !== 'float32') throw new Error(`random inputs support float32 only ('${spec.name}' is ${spec.dtype})`);
    const shape = rowShape(spec);
    const values = new Float32Array(byteLength({ dtype: 'float32', shape }) / 4);
    for (let i = 0; i < values.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      values[i] = (state / 2 ** 32) * scale;
    }
    return { name: spec.name, dtype: 'float32', shape, data: bytesOf(values) };
  });
}

/** Reads a single-input request from a file; the values must fill exactly one row of the input. */
export function inputsFromFile(manifest: ModelManifest, path: string): Tensor[] {
  const [spec, ...rest] = manifest.inputs;
  if (!spec || rest.length > 0) throw new Error('--input supports models with exactly one input');
  const shape = rowShape(spec);
  let values: Float32Array;
  if (path.endsWith('.pb')) {
    values = decodeTensor(readFileSync(path));
  } else if (path.endsWith('.json')) {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    const flat = (Array.isArray(parsed) ? parsed.flat(8) : []) as unknown[];
    if (!flat.every((v) => typeof v === 'number')) throw new Error(`${path} must hold a (nested) array of numbers`);
    values = Float32Array.from(flat as number[]);
  } else {
    const bytes = readFileSync(path);
    values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength - (bytes.byteLength % 4)));
  }
  const expected = byteLength({ dtype: 'float32', shape }) / 4;
  if (values.length !== expected) throw new Error(`${path} holds ${values.length} values; '${spec.name}' needs ${expected} (shape [${shape.join(',')}])`);
  return [{ name: spec.name, dtype: 'float32', shape, data: bytesOf(values) }];
}
