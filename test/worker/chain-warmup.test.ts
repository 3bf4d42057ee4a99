/**
 * How much a new chain runs before it serves: every batch size, twice, before the model's first
 * INFER; one smoke run at batch 1 during service (a ramp change must not take the worker away
 * from its queue for a full warm-up).
 */
import { describe, expect, it } from 'vitest';
import { chainWarmupBatchSizes } from '../../shared/chain-warmup.js';

describe('chainWarmupBatchSizes', () => {
  it('warms every batch size up to the largest, twice each, before service', () => {
    const sizes = chainWarmupBatchSizes('full', 4);
    expect(sizes).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
  });

  it('only smoke-runs batch 1 for a ramp change during service', () => {
    expect(chainWarmupBatchSizes('smoke', 16)).toEqual([1]);
  });
});
