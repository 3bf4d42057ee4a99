/**
 * From trace records to timed arrivals, reproducibly (every random choice comes from a seed).
 *
 * - Per-minute counts expand into arrivals inside each minute: `poisson` (Clockwork: a Poisson
 *   process at the minute's rate), `uniform` (Apparate: the minute's count evenly spaced) or
 *   `gamma` (gamma-distributed gaps with a given coefficient of variation, the usual way to make
 *   "the same trace, burstier").
 * - `scaleArrivals` compresses time (time-scale x: the replay runs x times faster), changes the
 *   rate without changing the shape (rate-scale < 1 thins arrivals at random, > 1 adds copies
 *   right after each original), starts at an offset and truncates by count or duration.
 * - Models: functions sorted by volume, function i → copy `i % copies` (Clockwork), or one stream
 *   split across N models by a Zipf law.
 */
import type { FunctionCounts } from './azure-functions-reader.js';
import type { Arrival } from './trace.js';
import { seededRandom } from '../shared/seeded-random.js';

export { seededRandom };

export type ArrivalDistribution = 'poisson' | 'uniform' | 'gamma';

function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(random() + 1e-300)) * Math.cos(2 * Math.PI * random());
}

/** Gamma(shape, 1) by Marsaglia and Tsang. */
export function gammaSample(shape: number, random: () => number): number {
  if (shape < 1) return gammaSample(shape + 1, random) * random() ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = random();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export interface ExpandOptions {
  distribution: ArrivalDistribution;
  /** Coefficient of variation of the gaps for `gamma`. Default 1 (= Poisson). */
  cv?: number;
  seed: number;
  /** Length of one count interval. Default 60,000 ms (per-minute traces). */
  intervalMs?: number;
}

/** Arrivals of every function, merged in time order (`source` = function id). */
export function expandCounts(functions: readonly FunctionCounts[], options: ExpandOptions): Arrival[] {
  const random = seededRandom(options.seed);
  const intervalMs = options.intervalMs ?? 60_000;
  const cv = options.cv ?? 1;
  const arrivals: Arrival[] = [];
  for (const fn of functions) {
    fn.counts.forEach((count, minute) => {
      if (count <= 0) return;
      const startMs = minute * intervalMs;
      const meanGapMs = intervalMs / count;
      if (options.distribution === 'uniform') {
        for (let i = 0; i < count; i++) arrivals.push({ timeMs: startMs + (i + 0.5) * meanGapMs, source: fn.id });
        return;
      }
      const shape = options.distribution === 'gamma' ? 1 / (cv * cv) : 1;
      const gap = () => (options.distribution === 'poisson' ? -Math.log(1 - random()) * meanGapMs : gammaSample(shape, random) * (meanGapMs / shape));
      for (let t = startMs + random() * gap(); t < startMs + intervalMs; t += gap()) arrivals.push({ timeMs: t, source: fn.id });
    });
  }
  return arrivals.sort((a, b) => a.timeMs - b.timeMs);
}

export interface ScaleOptions {
  /** The replay runs this many times faster. Default 1. */
  timeScale?: number;
  /** Multiply the arrival rate by this. Default 1. */
  rateScale?: number;
  /** Skip the first part of the trace (ms, before time-scaling). Default 0. */
  startOffsetMs?: number;
  maxRequests?: number;
  /** Stop after this long (seconds, after time-scaling). */
  maxSeconds?: number;
  seed: number;
}

export function scaleArrivals(arrivals: readonly Arrival[], options: ScaleOptions): Arrival[] {
  const random = seededRandom(options.seed + 0x5eed);
  const timeScale = options.timeScale ?? 1;
  const rateScale = options.rateScale ?? 1;
  if (!(timeScale > 0) || !(rateScale > 0)) throw new RangeError('time and rate scales must be positive');
  const offset = options.startOffsetMs ?? 0;
  const out: Arrival[] = [];
  const kept = arrivals.filter((a) => a.timeMs >= offset);
  kept.forEach((a, i) => {
    const copies = Math.floor(rateScale) + (random() < rateScale % 1 ? 1 : 0);
    const gapMs = ((kept[i + 1]?.timeMs ?? a.timeMs + 1) - a.timeMs) / timeScale;
    for (let c = 0; c < copies; c++) {
      // extra copies land at random inside the gap to the next arrival, preserving the shape
      const timeMs = (a.timeMs - offset) / timeScale + (c === 0 ? 0 : random() * gapMs);
      out.push({ ...a, timeMs });
    }
  });
  out.sort((a, b) => a.timeMs - b.timeMs);
  let result = out;
  if (options.maxSeconds !== undefined) result = result.filter((a) => a.timeMs < options.maxSeconds! * 1000);
  if (options.maxRequests !== undefined) result = result.slice(0, options.maxRequests);
  return result;
}

/**
 * Clockwork's mapping: the trace's functions sorted by volume (arrivals per `source`, most first;
 * ties by id), function i → `models[i % models.length]`. Arrivals without a source, or that
 * already name a model, are left as they are.
 */
export function mapSourcesToModels(arrivals: readonly Arrival[], models: readonly string[]): Arrival[] {
  if (models.length === 0) throw new Error('mapSourcesToModels: no models to map onto');
  const volume = new Map<string, number>();
  for (const a of arrivals) if (a.source !== undefined) volume.set(a.source, (volume.get(a.source) ?? 0) + 1);
  const byVolume = [...volume.keys()].sort((a, b) => volume.get(b)! - volume.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
  const modelOf = new Map(byVolume.map((source, i) => [source, models[i % models.length]!]));
  return arrivals.map((a) => (a.model !== undefined || a.source === undefined ? a : { ...a, model: modelOf.get(a.source)! }));
}

/** Splits one stream across models by a Zipf law (model k with probability ∝ 1 / (k+1)^s); arrivals that name a model keep it. */
export function zipfSplit(arrivals: readonly Arrival[], models: readonly string[], exponent: number, seed: number): Arrival[] {
  const random = seededRandom(seed + 0x21f);
  const weights = models.map((_, k) => 1 / (k + 1) ** exponent);
  const total = weights.reduce((a, b) => a + b, 0);
  return arrivals.map((a) => {
    let u = random() * total;
    let k = 0;
    while (k < models.length - 1 && u >= weights[k]!) u -= weights[k++]!;
    return a.model !== undefined ? a : { ...a, model: models[k]! };
  });
}
