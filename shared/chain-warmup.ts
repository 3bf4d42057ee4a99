/**
 * What a new chain (or release's fused model) runs before it serves: the worker runs it
 * (worker/ort-executor.ts `warmChain`), the planner prices it (a RAMPS action's first estimate,
 * controller/batch-estimates.ts `rampsPriorNs`).
 */
import type { RampsWarmup } from './protocol.js';

/** Warm-up runs of a new chain at every row count (compact mode shrinks batches to any size). */
const NUM_CHAIN_WARMUP_RUNS = 2;

/** The batch sizes a new chain runs at before it serves, in order. */
export function chainWarmupBatchSizes(warmup: RampsWarmup, maxBatchSize: number): number[] {
  if (warmup === 'smoke') return [1];
  return Array.from({ length: maxBatchSize }, (_, i) => i + 1).flatMap((b) => new Array<number>(NUM_CHAIN_WARMUP_RUNS).fill(b));
}
