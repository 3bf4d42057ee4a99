/**
 * Bursts made from a real trace: the trace's own busiest moments, made denser.
 *
 * A production trace compressed to a target mean rate keeps its shape, but its peaks are only a
 * few times its mean (the bundled conversation trace: its densest 10 ms hold about 2.6x the
 * mean at 50 % of a 2-worker capacity), so a 40 ms SLO absorbs them. To test what a flash crowd
 * does, `synthesizeBursts` compresses the trace to `ratePerSec` on average and then multiplies
 * the arrivals of its `numBursts` busiest windows (`windowMs` wide, on a fixed grid, after the
 * compression) by `burstFactor`: each arrival in such a window gets `burstFactor - 1` copies at
 * random instants inside the window. Where and when the bursts come is the trace's, not a random
 * process's; everything else is left as the trace has it. Reproducible under `seed`.
 */
import type { Arrival } from './trace.js';
import { seededRandom } from '../shared/seeded-random.js';

export interface BurstOptions {
  /** Mean arrival rate of the compressed trace, requests/s, before the bursts' copies. */
  ratePerSec: number;
  /** How many times denser each burst window becomes (>= 1). */
  burstFactor: number;
  /** Width of a burst window, ms (after compression). */
  windowMs: number;
  /** How many of the busiest windows become bursts. */
  numBursts: number;
  seed: number;
}

/** The trace (arrivals in time order) compressed to `ratePerSec`, its busiest windows made `burstFactor` times denser. */
export function synthesizeBursts(arrivals: readonly Arrival[], options: BurstOptions): Arrival[] {
  const { ratePerSec, burstFactor, windowMs, numBursts } = options;
  if (!(ratePerSec > 0) || !(burstFactor >= 1) || !(windowMs > 0) || !(numBursts >= 0)) {
    throw new RangeError('synthesizeBursts: rate and window must be positive, the burst factor >= 1 and the number of bursts >= 0');
  }
  if (arrivals.length < 2) return arrivals.map((a) => ({ ...a }));
  const firstMs = arrivals[0]!.timeMs;
  const spanMs = arrivals.at(-1)!.timeMs - firstMs;
  // n arrivals at `ratePerSec` span (n - 1) mean gaps
  const scale = spanMs > 0 ? (((arrivals.length - 1) / ratePerSec) * 1e3) / spanMs : 1;
  const compressed = arrivals.map((a) => ({ ...a, timeMs: (a.timeMs - firstMs) * scale }));

  const counts = new Map<number, number>();
  for (const a of compressed) {
    const w = Math.floor(a.timeMs / windowMs);
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  // the busiest windows; ties go to the earlier one, so the choice is stable
  const bursts = new Set(
    [...counts]
      .sort((x, y) => y[1] - x[1] || x[0] - y[0])
      .slice(0, numBursts)
      .map(([w]) => w),
  );

  const random = seededRandom(options.seed + 0xb0057);
  const out: Arrival[] = [];
  for (const a of compressed) {
    out.push(a);
    const w = Math.floor(a.timeMs / windowMs);
    if (!bursts.has(w)) continue;
    // a fractional factor adds its last copy with that probability
    const extra = Math.floor(burstFactor - 1) + (random() < (burstFactor - 1) % 1 ? 1 : 0);
    for (let c = 0; c < extra; c++) out.push({ ...a, timeMs: (w + random()) * windowMs });
  }
  return out.sort((x, y) => x.timeMs - y.timeMs);
}
