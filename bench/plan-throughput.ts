/**
 * Controller scale: how many requests per second the pure scheduling core plans, with many
 * simulated workers and models, on one core. The core runs against a virtual clock; simulated
 * workers complete actions after their modelled duration; wall-clock time is spent only in the
 * core's calls (arrivals, plans, results), which is what is measured.
 */
import { performance } from 'node:perf_hooks';
import type { ModelSpec } from '../controller/cluster-state.js';
import { Scheduler } from '../controller/scheduler.js';
import type { PlannedAction } from '../controller/core-outputs.js';
import { ErrorCode } from '../shared/error-codes.js';
import type { ActionResultMsg } from '../shared/protocol.js';

export interface PlanThroughputOptions {
  numWorkers: number;
  numModels: number;
  /** Virtual arrival rate over all models, requests per second. */
  arrivalRatePerSec: number;
  /** Virtual seconds of measured load (after a warm-up that loads the models). */
  virtualSeconds: number;
  sloMs: number;
  /** Batch sizes the planner may form. Default every size 1..16 (exact batches, the controller's default). */
  batchSizes?: number[];
}

export interface PlanThroughputResult {
  numRequests: number;
  numActions: number;
  wallSeconds: number;
  planRequestsPerSec: number;
  byStatus: Record<string, number>;
}

const STEP_NS = 100_000; // the virtual clock advances 0.1 ms between planning passes

const EXACT_BATCH_SIZES = Array.from({ length: 16 }, (_, i) => i + 1);

function spec(i: number, batchSizes: number[]): ModelSpec {
  return {
    name: `model-${i}`,
    inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 8] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
    batchSizes,
    weightsBytes: 100,
    nominalBatch1Ns: 1_000_000,
  };
}

/** Modelled duration: 1 ms + 0.1 ms per item (a small CNN on a GPU-class device). */
function durationNs(batchSize: number): number {
  return 1_000_000 + 100_000 * batchSize;
}

export function measurePlanThroughput(options: PlanThroughputOptions): PlanThroughputResult {
  const scheduler = new Scheduler(
    Array.from({ length: options.numModels }, (_, i) => spec(i, options.batchSizes ?? EXACT_BATCH_SIZES)),
    { defaultLoadNs: 10_000_000 },
  );
  // Memory for 3 copies of every model across the cluster.
  const perWorkerBytes = Math.ceil((3 * options.numModels) / options.numWorkers) * 100;
  for (let w = 0; w < options.numWorkers; w++) scheduler.addWorker(`w${w}`, perWorkerBytes);
  const running = new Map<string, { planned: PlannedAction; endNs: number }[]>();
  const byStatus: Record<string, number> = {};
  let nowNs = 1_000_000_000;
  let nextId = 1;
  let numActions = 0;
  let seed = 7;
  const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 1) / 2 ** 32;

  const runPhase = (virtualSeconds: number, measure: boolean): { requests: number; wallMs: number } => {
    const endNs = nowNs + virtualSeconds * 1e9;
    let nextArrivalNs = nowNs;
    let requests = 0;
    let wallMs = 0;
    while (nowNs < endNs) {
      const t0 = performance.now();
      // 1. arrivals in this step
      while (nextArrivalNs <= nowNs) {
        const model = `model-${Math.floor(random() * options.numModels)}`;
        const outcome = scheduler.onArrival({ id: nextId++, model, arrivalNs: nowNs, deadlineNs: nowNs + options.sloMs * 1e6 }, nowNs);
        if (outcome && measure) byStatus[outcome.status] = (byStatus[outcome.status] ?? 0) + 1;
        requests++;
        nextArrivalNs += (-Math.log(random()) / options.arrivalRatePerSec) * 1e9;
      }
      // 2. completions
      for (const [workerId, queue] of running) {
        while (queue.length > 0 && queue[0]!.endNs <= nowNs) {
          const { planned, endNs: doneNs } = queue.shift()!;
          const a = planned.action;
          const startNs = doneNs - durationNs(a.type === 'infer' ? a.batchSize : 0);
          const msg: ActionResultMsg = {
            type: 'result',
            actionId: a.actionId,
            actionType: a.type,
            modelName: a.modelName,
            code: ErrorCode.OK,
            timing: { receivedNs: startNs, startNs, endNs: doneNs, durationNs: doneNs - startNs, sentNs: doneNs },
          };
          if (a.type === 'load') msg.profile = a.batchSizes.map((b) => ({ batchSize: b, durationNs: durationNs(b), p99DurationNs: durationNs(b) }));
          for (const o of scheduler.onResult(workerId, msg, nowNs).outcomes) if (measure) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
        }
      }
      // 3. one planning pass
      const { actions, outcomes } = scheduler.plan(nowNs);
      if (measure) for (const o of outcomes) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
      for (const planned of actions) {
        const queue = running.get(planned.workerId) ?? [];
        const a = planned.action;
        const startNs = Math.max(nowNs, queue.at(-1)?.endNs ?? 0);
        queue.push({ planned, endNs: startNs + (a.type === 'infer' ? durationNs(a.batchSize) : a.type === 'load' ? 10_000_000 : 100_000) });
        running.set(planned.workerId, queue);
        numActions++;
      }
      wallMs += performance.now() - t0;
      nowNs += STEP_NS;
    }
    return { requests, wallMs };
  };

  runPhase(0.5, false); // warm-up: models get placed and loaded
  numActions = 0;
  const measured = runPhase(options.virtualSeconds, true);
  return {
    numRequests: measured.requests,
    numActions,
    wallSeconds: measured.wallMs / 1000,
    planRequestsPerSec: measured.requests / (measured.wallMs / 1000),
    byStatus,
  };
}
