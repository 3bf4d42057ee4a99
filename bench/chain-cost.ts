/**
 * What running a package as a segment chain costs by itself: the same batch run whole and as the
 * chain with its ramps attached but never exiting, interleaved, in one executor with one intra-op
 * thread (as workers run), away from any serving. Serving adds contention on top of this.
 */
import { dirname } from 'node:path';
import type { ModelEntry } from '../shared/model-manifest.js';
import type { EarlyExitPlan } from '../shared/protocol.js';
import type { Tensor } from '../shared/tensor.js';
import { ThreadExecutor } from '../worker/thread-executor.js';
import { Device } from '../worker/device.js';
import { runNow } from '../worker/device.js';

let nextActionId = 1;
const openWindow = () => ({ actionId: nextActionId++, earliestNs: 0, latestNs: 0, expectedDurationNs: 0, expectedStartNs: 0 });

/** Loads a package on a device directly (and, for early-exit packages, its chosen ramp set). */
export async function loadOnDevice(device: Device, entry: ModelEntry, batchSizes: number[]): Promise<void> {
  const loaded = await runNow(device, { type: 'load', ...openWindow(), modelName: entry.manifest.name, batchSizes });
  if (loaded.code !== 0) throw new Error(`LOAD failed: ${loaded.message}`);
  const ee = entry.manifest.earlyExit;
  if (!ee) return;
  const ramps = await runNow(device, { type: 'ramps', ...openWindow(), modelName: entry.manifest.name, siteIds: ee.chosenRamps });
  if (ramps.code !== 0) throw new Error(`RAMPS failed: ${ramps.message}`);
}

/** Runs one batch on a device directly; resolves with the device's own start-to-end time (ms). */
export async function inferOnDevice(device: Device, entry: ModelEntry, batch: Tensor[], batchSize: number, earlyExit?: EarlyExitPlan): Promise<number> {
  const inputs = entry.manifest.inputs.map((s) => ({ name: s.name, dtype: s.dtype, shape: [batchSize, ...s.shape.slice(1)] }));
  const action = {
    type: 'infer' as const,
    ...openWindow(),
    modelName: entry.manifest.name,
    batchSize,
    numRequests: batchSize,
    inputs,
    ...(earlyExit ? { earlyExit } : {}),
  };
  const outcome = await runNow(device, action, batch);
  if (outcome.code !== 0) throw new Error(`INFER failed: ${outcome.message}`);
  return (outcome.endLocalNs - outcome.startLocalNs) / 1e6;
}

export interface ChainCost {
  batchSize: number;
  wholeMs: number;
  chainMs: number;
  /** chainMs / wholeMs */
  ratio: number;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;

export async function measureChainCost(entry: ModelEntry, batch: Tensor[], batchSize: number, numRuns = 30): Promise<ChainCost> {
  const ee = entry.manifest.earlyExit;
  if (!ee) throw new Error(`${entry.manifest.name} has no early-exit package`);
  const device = new Device(new ThreadExecutor({ device: 'cpu', intraOpNumThreads: 1 }), {
    modelDir: dirname(dirname(entry.onnxPath)),
    memoryBudgetBytes: 2 ** 40,
  });
  try {
    await loadOnDevice(device, entry, [batchSize]);
    const neverExit = { mode: 'release' as const, ramps: ee.chosenRamps.map((siteId) => ({ siteId, threshold: 2 })), keepRows: [] };
    const whole: number[] = [];
    const chain: number[] = [];
    for (let run = -5; run < numRuns; run++) {
      for (const target of [whole, chain]) {
        // NOTE: a fresh copy each run: the device takes (transfers) the bytes it is given.
        const ms = await inferOnDevice(
          device,
          entry,
          batch.map((t) => ({ ...t, data: new Uint8Array(t.data) })),
          batchSize,
          target === chain ? neverExit : undefined,
        );
        if (run >= 0) target.push(ms); // the first five warm up
      }
    }
    const wholeMs = median(whole);
    const chainMs = median(chain);
    return { batchSize, wholeMs, chainMs, ratio: chainMs / wholeMs };
  } finally {
    await device.close();
  }
}
