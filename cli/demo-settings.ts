/**
 * What the demo replays on a model: the bundled Azure trace at 100x on fmnist-resnet (~500 req/s,
 * about a third of two workers' capacity), and on any other bundled package the same share of its
 * capacity, with inputs from the dataset its ramps were made from. Capacity comes from the
 * package's profile: two workers running the largest batch back to back. On a host that runs the
 * model slower than its profile says (`hostSpeed`, measured by the caller), the trace plays
 * slower by as much, so the load stays that share of this host's capacity; never faster.
 */
import { profileRateFactor, type HostSpeed } from '../loadgen/host-speed.js';
import { profiledCapacityRps } from '../loadgen/profiled-capacity.js';
import { loadModelEntry } from '../shared/model-manifest.js';

const REFERENCE_MODEL = 'fmnist-resnet';
const REFERENCE_TIME_SCALE = 100;

export function demoSettings(modelDir: string, model: string, hostSpeed?: HostSpeed): { timeScale: number; dataset: string } {
  const entry = loadModelEntry(modelDir, model);
  const dataset = `datasets/${entry.manifest.earlyExit?.dataset.name ?? ''}`;
  const share = model === REFERENCE_MODEL ? 1 : profiledCapacityRps(modelDir, model) / profiledCapacityRps(modelDir, REFERENCE_MODEL);
  const slower = profileRateFactor(hostSpeed);
  return { timeScale: Math.max(1, Math.round(REFERENCE_TIME_SCALE * share * slower * 10) / 10), dataset };
}
