/**
 * The SLO a replay, a benchmark or the demo serves a model with, when the user gives none: a
 * multiple of the model's profiled batch-1 latency, never below a floor.
 */
import type { ModelEntry } from '../shared/model-manifest.js';

/** Without --slo-ms or --slo-factor, the SLO is this multiple of the batch-1 latency (see `sloFor`). */
export const DEFAULT_SLO_FACTOR = 10;

/**
 * The SLO: given in ms, or as a multiple of the model's profiled batch-1 latency. Without either,
 * the rule is max(`floorMs`, 10 x batch-1 latency) rounded up to 10 ms: the floor covers the ~2 ms
 * serving overhead that dominates small models (fmnist-resnet: 1.3 ms, so 40 ms), the factor scales
 * with compute for real-size ones (fmnist-resnet-112: ~20 ms, so 200 ms).
 */
export function sloFor(entry: ModelEntry | undefined, sloMs: number | undefined, sloFactor: number | undefined, floorMs = 50): number {
  if (sloMs !== undefined) return sloMs;
  const batch1Ms = entry?.manifest.earlyExit?.profile.wholeMs['1'];
  if (sloFactor !== undefined && batch1Ms !== undefined) return sloFactor * batch1Ms;
  if (sloFactor !== undefined) throw new Error('--slo-factor needs a model package with a profile; give --slo-ms instead');
  if (batch1Ms === undefined) return floorMs;
  return Math.max(floorMs, Math.ceil((DEFAULT_SLO_FACTOR * batch1Ms) / 10) * 10);
}
