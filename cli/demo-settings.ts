/**
 * What the demo replays on a model: the bundled Azure trace at 100x on fmnist-resnet (~500 req/s,
 * about a third of two workers' capacity), and on any other bundled package the same share of its
 * capacity, with inputs from the dataset its ramps were made from. Capacity comes from the
 * package's profile: two workers running the largest batch back to back.
 */
import { profiledCapacityRps } from '../loadgen/profiled-capacity.js';
import { loadModelEntry } from '../shared/model-manifest.js';

const REFERENCE_MODEL = 'fmnist-resnet';
const REFERENCE_TIME_SCALE = 100;

export function demoSettings(modelDir: string, model: string): { timeScale: number; dataset: string } {
  const entry = loadModelEntry(modelDir, model);
  const dataset = `datasets/${entry.manifest.earlyExit?.dataset.name ?? ''}`;
  if (model === REFERENCE_MODEL) return { timeScale: REFERENCE_TIME_SCALE, dataset };
  const share = profiledCapacityRps(modelDir, model) / profiledCapacityRps(modelDir, REFERENCE_MODEL);
  return { timeScale: Math.max(1, Math.round(REFERENCE_TIME_SCALE * share * 10) / 10), dataset };
}
