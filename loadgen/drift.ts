/**
 * Drift workloads: the served inputs change over a run, so that the online threshold tuner has
 * something to adapt to (Apparate's argument). Made reproducibly from a labelled image dataset:
 *
 * - `class-mix`: the stream moves between class subsets: the first half of the run draws from the
 *   lower half of the class ids, the second half from the upper half (Fashion-MNIST: t-shirt,
 *   trouser, pullover, dress, coat; then sandal, shirt, sneaker, bag, ankle boot);
 * - `noise`: Gaussian pixel noise whose standard deviation grows linearly from 0 to 40 % of the
 *   dataset's value range over the run (input-quality drift);
 * - `shift`: clean inputs until the middle of the run, then noise at 30 % of the range at once
 *   (a sudden shift at a known time).
 *
 * A JSON description (inline or a file) gives custom ones with the same fields, e.g.
 * `{"kind":"class-mix","phases":[{"untilFraction":0.3,"classes":[1,7]},{"untilFraction":1,"classes":[0,6]}]}`,
 * `{"kind":"noise","fromSigma":0,"toSigma":0.6}`, `{"kind":"shift","atFraction":0.25,"sigma":0.5}`.
 */
import { CodedError, ErrorCode } from '../shared/error-codes.js';
import { existsSync, readFileSync } from 'node:fs';
import { seededRandom } from '../shared/seeded-random.js';

export type DriftSpec =
  | { kind: 'class-mix'; phases: { untilFraction: number; classes: number[] }[] }
  | { kind: 'noise'; fromSigma: number; toSigma: number }
  | { kind: 'shift'; atFraction: number; sigma: number };

export const NAMED_DRIFTS = ['class-mix', 'noise', 'shift'] as const;

export class DriftError extends CodedError {
  override readonly name = 'DriftError';
  readonly code = ErrorCode.DRIFT_INVALID;
}

export function isDriftError(err: unknown): err is DriftError {
  return err instanceof DriftError;
}

/** A named drift, or a JSON description given inline or as a file. */
export function parseDrift(text: string, numClasses: number): DriftSpec {
  if (text === 'class-mix') {
    const half = Math.ceil(numClasses / 2);
    return {
      kind: 'class-mix',
      phases: [
        { untilFraction: 0.5, classes: range(0, half) },
        { untilFraction: 1, classes: range(half, numClasses) },
      ],
    };
  }
  if (text === 'noise') return { kind: 'noise', fromSigma: 0, toSigma: 0.4 };
  if (text === 'shift') return { kind: 'shift', atFraction: 0.5, sigma: 0.3 };
  let json: unknown;
  try {
    json = JSON.parse(existsSync(text) ? readFileSync(text, 'utf8') : text);
  } catch {
    throw new DriftError(`--drift: '${text}' is neither ${NAMED_DRIFTS.join(', ')} nor a JSON description (inline or a file)`);
  }
  return checkDrift(json, numClasses);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

const fraction = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 1;
const sigma = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 10;

function checkDrift(json: unknown, numClasses: number): DriftSpec {
  const d = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (d.kind === 'class-mix') {
    const phases = d.phases;
    const ok =
      Array.isArray(phases) &&
      phases.length > 0 &&
      phases.every((p, i) => {
        const q = (p ?? {}) as Record<string, unknown>;
        const classes = q.classes;
        return (
          fraction(q.untilFraction) &&
          (i === 0 || (q.untilFraction as number) > (phases[i - 1] as { untilFraction: number }).untilFraction) &&
          Array.isArray(classes) &&
          classes.length > 0 &&
          classes.every((c) => Number.isInteger(c) && c >= 0 && c < numClasses)
        );
      });
    if (!ok || (phases as { untilFraction: number }[]).at(-1)!.untilFraction !== 1)
      throw new DriftError(`a class-mix drift needs phases with increasing untilFraction ending at 1, each with classes in [0, ${numClasses})`);
    return { kind: 'class-mix', phases: phases as { untilFraction: number; classes: number[] }[] };
  }
  if (d.kind === 'noise') {
    if (!sigma(d.fromSigma) || !sigma(d.toSigma)) throw new DriftError('a noise drift needs fromSigma and toSigma in [0, 10] (fractions of the value range)');
    return { kind: 'noise', fromSigma: d.fromSigma as number, toSigma: d.toSigma as number };
  }
  if (d.kind === 'shift') {
    if (!fraction(d.atFraction) || !sigma(d.sigma)) throw new DriftError('a shift drift needs atFraction in [0, 1] and sigma in [0, 10]');
    return { kind: 'shift', atFraction: d.atFraction as number, sigma: d.sigma as number };
  }
  throw new DriftError(`a drift's kind is one of ${NAMED_DRIFTS.join(', ')}`);
}

/** What request i of a run of n serves: a sample (by position in the serving part) and the noise on it. */
export interface DriftPlan {
  sampleOf(i: number): number;
  /** Standard deviation of the noise, as a fraction of the dataset's value range. */
  sigmaOf(i: number): number;
}

/** `labels`: the serving part's labels in order (class-mix needs them). */
export function planDrift(spec: DriftSpec, numRequests: number, numServe: number, labels?: ArrayLike<number>): DriftPlan {
  const at = (i: number) => (numRequests <= 1 ? 0 : i / numRequests);
  switch (spec.kind) {
    case 'noise':
      return {
        sampleOf: (i) => i % numServe,
        sigmaOf: (i) => spec.fromSigma + (spec.toSigma - spec.fromSigma) * (numRequests <= 1 ? 0 : i / (numRequests - 1)),
      };
    case 'shift':
      return { sampleOf: (i) => i % numServe, sigmaOf: (i) => (at(i) >= spec.atFraction ? spec.sigma : 0) };
    case 'class-mix': {
      if (!labels) throw new DriftError('a class-mix drift needs a labelled dataset');
      const pools = spec.phases.map((p) => {
        const wanted = new Set(p.classes);
        const pool: number[] = [];
        for (let k = 0; k < numServe; k++) if (wanted.has(labels[k]!)) pool.push(k);
        if (pool.length === 0) throw new DriftError(`no served sample has a class among [${p.classes.join(', ')}]`);
        return pool;
      });
      const phaseOf = (i: number) => spec.phases.findIndex((p, k) => at(i) < p.untilFraction || k === spec.phases.length - 1);
      const phaseStart = spec.phases.map((_, k) => (k === 0 ? 0 : Math.ceil(spec.phases[k - 1]!.untilFraction * numRequests)));
      return {
        sampleOf: (i) => {
          const k = phaseOf(i);
          const pool = pools[k]!;
          return pool[(i - phaseStart[k]!) % pool.length]!;
        },
        sigmaOf: () => 0,
      };
    }
  }
}

/** Adds the plan's noise to a sample, in place (seeded by the request index; clamped to [lo, hi]). */
export function addNoise(sample: Float32Array, sigmaOfRange: number, index: number, lo: number, hi: number): void {
  if (sigmaOfRange <= 0) return;
  const random = seededRandom(0x0d21f7 + index);
  const sd = sigmaOfRange * (hi - lo);
  for (let j = 0; j < sample.length; j += 2) {
    // Box-Muller: two normal draws from two uniforms
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const t = 2 * Math.PI * random();
    sample[j] = Math.min(hi, Math.max(lo, sample[j]! + sd * r * Math.cos(t)));
    if (j + 1 < sample.length) sample[j + 1] = Math.min(hi, Math.max(lo, sample[j + 1]! + sd * r * Math.sin(t)));
  }
}
