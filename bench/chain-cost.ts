/**
 * What running a package as a segment chain costs by itself: the same batch run whole and as the
 * chain with its ramps attached but never exiting, interleaved, in one executor with one intra-op
 * thread (as workers run), away from any serving. Serving adds contention on top of this.
 */
import type { ModelEntry } from '../shared/model-manifest.js';
import type { Tensor } from '../shared/tensor.js';
import { OnnxExecutor } from '../worker/onnx-executor.js';

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
  const executor = new OnnxExecutor({ device: 'cpu', intraOpNumThreads: 1 });
  try {
    await executor.load(entry, [batchSize]);
    await executor.prepareRamps(entry.manifest.name, ee.chosenRamps);
    const neverExit = { mode: 'release' as const, ramps: ee.chosenRamps.map((siteId) => ({ siteId, threshold: 2 })), keepRows: [] };
    const whole: number[] = [];
    const chain: number[] = [];
    for (let run = -5; run < numRuns; run++) {
      for (const target of [whole, chain]) {
        const t0 = performance.now();
        await executor.infer(entry.manifest.name, batchSize, batch, { numRequests: batchSize, ...(target === chain ? { earlyExit: neverExit } : {}) });
        if (run >= 0) target.push(performance.now() - t0); // the first five warm up
      }
    }
    const wholeMs = median(whole);
    const chainMs = median(chain);
    return { batchSize, wholeMs, chainMs, ratio: chainMs / wholeMs };
  } finally {
    await executor.close();
  }
}
