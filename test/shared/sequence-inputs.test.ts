import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/error-codes.js';
import { bytesOf, validateRequestInputs, type Tensor, type TensorSpec } from '../../shared/tensor.js';

const specs: TensorSpec[] = [
  { name: 'input_ids', dtype: 'int64', shape: [-1, -1] },
  { name: 'attention_mask', dtype: 'int64', shape: [-1, -1] },
];
const row = (name: string, length: number): Tensor => ({ name, dtype: 'int64', shape: [1, length], data: bytesOf(new BigInt64Array(length).fill(1n)) });

describe('validateRequestInputs with a sequence axis', () => {
  it('accepts any length up to the longest bucket and returns it', () => {
    expect(validateRequestInputs(specs, [row('input_ids', 1), row('attention_mask', 1)], 128)).toBe(1);
    expect(validateRequestInputs(specs, [row('input_ids', 128), row('attention_mask', 128)], 128)).toBe(128);
  });

  it('rejects too long, empty and mismatched sequences with INVALID_INPUT', () => {
    const codeOf = (tensors: Tensor[]) => {
      try {
        validateRequestInputs(specs, tensors, 128);
        return 'accepted';
      } catch (err) {
        return `${(err as { code: number }).code}: ${(err as Error).message}`;
      }
    };
    expect(codeOf([row('input_ids', 129), row('attention_mask', 129)])).toMatch(
      new RegExp(`^${ErrorCode.INVALID_INPUT}: .*129 tokens; this model takes 1 to 128`),
    );
    expect(codeOf([row('input_ids', 0), row('attention_mask', 0)])).toMatch(/0 tokens/);
    expect(codeOf([row('input_ids', 12), row('attention_mask', 13)])).toMatch(/must match/);
  });

  it('returns 0 for fixed-shape models', () => {
    const fixed: TensorSpec[] = [{ name: 'x', dtype: 'float32', shape: [-1, 4] }];
    expect(validateRequestInputs(fixed, [{ name: 'x', dtype: 'float32', shape: [1, 4], data: bytesOf(new Float32Array(4)) }])).toBe(0);
  });
});
