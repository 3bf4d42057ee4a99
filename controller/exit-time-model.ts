/**
 * How long an INFER of an early-exit model takes, relative to the whole model, from the package's
 * offline profile: the chain's extra cost, each head's cost, and (compact mode) how much later
 * segments shrink when requests leave.
 *
 * The scheduler keeps learning whole-model-equivalent durations per (worker, batch size) and
 * multiplies them by these factors: the no-exit factor (chain + every active head, nobody leaves)
 * bounds the deadline check, so planning stays safe whatever the exits do; the expected factor
 * (compact mode, with the observed exit rates) places the action on the worker's timeline, so the
 * time that exits free up is used by the next plan. Ratios from the profile travel across machines
 * better than absolute times.
 */
import type { EarlyExitSection } from '../shared/early-exit-manifest.js';
import type { ExitMode } from '../shared/protocol.js';

export interface ExitTiming {
  mode: ExitMode;
  /** Active ramps, depth order. */
  siteIds: number[];
  /** Fraction of requests answered at each active ramp (same order). */
  exitRates: number[];
  /** Compact mode: fraction of exited requests that still run to the end. */
  monitorFraction: number;
}

type Curve = [batchSize: number, ms: number][];

/** Linear interpolation over profiled batch sizes; proportional below the smallest. */
function at(curve: Curve, batchSize: number): number {
  if (batchSize <= 0) return 0;
  const [b0, v0] = curve[0]!;
  if (batchSize <= b0) return (v0 * batchSize) / b0;
  for (let i = 1; i < curve.length; i++) {
    const [b1, v1] = curve[i]!;
    if (batchSize <= b1) {
      const [ba, va] = curve[i - 1]!;
      return va + ((v1 - va) * (batchSize - ba)) / (b1 - ba);
    }
  }
  const [bl, vl] = curve.at(-1)!;
  return (vl * batchSize) / bl; // beyond the profile: linear in the batch
}

function curveOf(byBatch: Record<string, number>): Curve {
  return Object.entries(byBatch)
    .map(([b, ms]) => [Number(b), ms] as [number, number])
    .sort((a, b) => a[0] - b[0]);
}

export class ExitTimeModel {
  private readonly whole: Curve;
  private readonly upTo = new Map<number, Curve>();
  private readonly cost = new Map<number, Curve>();
  private readonly chainOverhead: Curve;

  constructor(profile: EarlyExitSection['profile'], rampCostMs: Record<number, Record<string, number>>) {
    this.whole = curveOf(profile.wholeMs);
    for (const [site, byBatch] of Object.entries(profile.siteUpToMs)) this.upTo.set(Number(site), curveOf(byBatch));
    for (const [site, byBatch] of Object.entries(rampCostMs)) this.cost.set(Number(site), curveOf(byBatch));
    // Running as a chain costs extra launches and copies: chain / whole per batch size (≥ 1).
    this.chainOverhead = curveOf(Object.fromEntries(Object.entries(profile.chainMs).map(([b, ms]) => [b, Math.max(1, ms / profile.wholeMs[b]!)])));
  }

  static fromSection(ee: EarlyExitSection): ExitTimeModel {
    return new ExitTimeModel(ee.profile, Object.fromEntries(ee.ramps.map((r) => [r.siteId, r.costMs])));
  }

  /** Duration of a batch in which nobody leaves, as a multiple of the whole model's (≥ 1). */
  noExitFactor(siteIds: readonly number[], batchSize: number): number {
    const wholeMs = at(this.whole, batchSize);
    const headsMs = siteIds.reduce((s, id) => s + at(this.cost.get(id) ?? [[1, 0]], batchSize), 0);
    return at(this.chainOverhead, batchSize) + headsMs / wholeMs;
  }

  /**
   * Duration of a batch of `numRequests` (padded to `batchSize`), as a multiple of the whole
   * model's at `batchSize`, when the given shares of requests leave at each ramp (compact mode;
   * release mode never shrinks, so it equals the no-exit factor).
   */
  factor(timing: ExitTiming, numRequests: number, batchSize: number, exitsPerRamp?: readonly number[]): number {
    if (timing.mode === 'release' || timing.siteIds.length === 0) return this.noExitFactor(timing.siteIds, batchSize);
    const wholeMs = at(this.whole, batchSize);
    const overhead = at(this.chainOverhead, batchSize);
    let rows = numRequests; // compact mode drops padding before the first segment
    let previous: Curve | undefined;
    let totalMs = 0;
    timing.siteIds.forEach((site, i) => {
      const upTo = this.upTo.get(site)!;
      totalMs += overhead * (at(upTo, rows) - (previous ? at(previous, rows) : 0));
      totalMs += at(this.cost.get(site) ?? [[1, 0]], rows);
      const leaving = exitsPerRamp ? exitsPerRamp[i]! : numRequests * timing.exitRates[i]!;
      rows = Math.max(0, rows - leaving * (1 - timing.monitorFraction));
      previous = upTo;
    });
    totalMs += overhead * (at(this.whole, rows) - (previous ? at(previous, rows) : 0));
    return totalMs / wholeMs;
  }
}
