/**
 * A fake cluster serving one model with two early-exit ramps, for scheduler tests: the model
 * takes 1 ms per row, its ramp sites sit at 30 % and 70 % of it, and its chain costs 5 % more
 * than the whole model. The workers answer rows at the ramps in the shares a test gives.
 */
import { ExitTimeline } from '../../controller/exit-timeline.js';
import type { SchedulerConfig } from '../../controller/scheduler-config.js';
import { FakeCluster, MS, modelSpec, type FakeWorkerKnobs } from './fake-cluster.js';

export const byBatch = (perItemMs: number) => ({ 1: perItemMs, 2: 2 * perItemMs, 4: 4 * perItemMs, 8: 8 * perItemMs, 16: 16 * perItemMs });

/** The model's offline profile: whole model, up to each ramp site, the chain (ms per batch size). */
export const EXIT_PROFILE = {
  batchSizes: [1, 2, 4, 8, 16],
  wholeMs: byBatch(1),
  siteUpToMs: { 1: byBatch(0.3), 2: byBatch(0.7) },
  chainMs: byBatch(1.05),
  referenceBatchSize: 4,
};
/** Each ramp head's cost (ms per batch size). */
export const HEAD_COSTS = { 1: byBatch(0.01), 2: byBatch(0.01) };

export const RAMPS = [
  { siteId: 1, threshold: 0.9 },
  { siteId: 2, threshold: 0.9 },
];
/** Segment s of the chain, as the profile has it: 0.3 / 0.4 / 0.3 ms per row, 5 % chain overhead, heads 0.01 ms. */
export const segmentNs = (_m: string, s: number, rows: number) => rows * MS * (1.05 * [0.3, 0.4, 0.3][s]! + (s < 2 ? 0.01 : 0));

/** The fused model (release with a queue behind the batch): the whole model plus 0.01 ms per row per head. */
export const fusedNs = (_m: string, b: number) => b * MS * 1.02;

/** Model 'ee' with both ramps in `mode`, loaded on `numWorkers` fake workers (w0, w1, ...). */
export function exitCluster(mode: 'release' | 'compact', exitShares: FakeWorkerKnobs['exitShares'], numWorkers = 1, config: Partial<SchedulerConfig> = {}) {
  const spec = modelSpec('ee');
  spec.exitTimeline = new ExitTimeline(EXIT_PROFILE, HEAD_COSTS);
  spec.earlyExit = { mode, ramps: RAMPS, monitorFraction: 0.1 };
  const c = new FakeCluster([spec], config);
  for (let w = 0; w < numWorkers; w++)
    c.addWorker(`w${w}`, 10_000, { inferNs: (_m, b) => b * MS, profileNs: (_m, b) => b * MS, exitShares, segmentNs, fusedNs });
  c.scheduler.pin('ee');
  c.runForMs(100);
  return c;
}
