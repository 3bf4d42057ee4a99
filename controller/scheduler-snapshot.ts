/**
 * What the planner shows of itself in `escapement status`: queues per model, and per worker its
 * memory, when its timeline frees up, what it holds and the INFER durations it is estimated at.
 */
import type { ControllerStatus } from '../shared/status-schema.js';
import type { ModelState, WorkerState } from './cluster-state.js';
import type { LatencyEstimator } from './latency-estimator.js';
import { profileKey } from './profile-key.js';

export type SchedulerSnapshot = Pick<ControllerStatus, 'numQueued' | 'models' | 'workers'>;

export function snapshotOf(
  models: ReadonlyMap<string, ModelState>,
  workers: ReadonlyMap<string, WorkerState>,
  estimator: LatencyEstimator,
  numQueued: number,
  nowNs: number,
): SchedulerSnapshot {
  return {
    numQueued,
    models: [...models.values()].map((m) => ({ name: m.spec.name, numQueued: m.queue.length })),
    workers: [...workers.values()].map((w) => ({
      id: w.id,
      memoryBudgetBytes: w.memoryBudgetBytes,
      usedBytes: w.usedBytes,
      freeInMs: (w.timeline.freeAtNs(nowNs) - nowNs) / 1e6,
      startDelayMs: w.timeline.startDelayNs / 1e6,
      numInflight: w.inflight.size,
      models: [...w.instances.values()].map((i) => ({ name: i.model, state: i.state })),
      // Per batch size; text models: per sequence bucket, then batch size.
      estimatesMs: Object.fromEntries(
        [...w.instances.values()].map((i) => {
          const spec = models.get(i.model)!.spec;
          const bySize = (seqLength: number) =>
            Object.fromEntries(spec.batchSizes.map((b) => [b, (estimator.estimateNs(i.model, w.id, profileKey(b, seqLength)) ?? NaN) / 1e6]));
          return [i.model, spec.sequenceBuckets ? Object.fromEntries(spec.sequenceBuckets.map((t) => [`T${t}`, bySize(t)])) : bySize(0)];
        }),
      ),
    })),
  };
}
