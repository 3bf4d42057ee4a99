/**
 * A model's serving capacity from its package profile: `numWorkers` workers running the largest
 * profiled batch back to back. Load generators size their rates by it (the demo, benchmarks).
 */
import { loadModelEntry } from '../shared/model-manifest.js';

export function profiledCapacityRps(modelDir: string, model: string, numWorkers = 2): number {
  const ee = loadModelEntry(modelDir, model).manifest.earlyExit;
  if (!ee) throw new Error(`'${model}' has no profile: capacity comes from a package made by escapement prepare`);
  const largest = Math.max(...Object.keys(ee.profile.wholeMs).map(Number));
  return (numWorkers * largest * 1000) / ee.profile.wholeMs[String(largest)]!;
}
