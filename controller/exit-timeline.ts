/**
 * When a batch of an early-exit model finishes, as the planner counts on it: the exit-aware
 * timeline of one model.
 *
 * A batch's duration is predicted relative to the whole model's at the same batch size (the
 * latency estimator learns whole-model durations per worker, so per-worker speed and host noise
 * stay there). The factor has two parts:
 * - the chain's own cost: running as segments with ramp heads costs more than the whole model
 *   (`noExitFactor`, from the package profile: the chain against the whole model, plus the heads);
 * - how much of it runs: in compact mode answered rows leave, so segment s runs only the rows
 *   still alive there (exit-evidence.ts) and costs what its learned line says for that many rows
 *   (segment-costs.ts, fitted online from the workers' stage timings).
 * The bound (deadline checks, admission) reads the rows alive at the evidence's planning quantile
 * (p95 of the survivors, each ramp's survival at its 95 % upper bound); the expected factor (the
 * worker's timeline) reads the point estimate. Without evidence both are the no-exit factor, so
 * the planner is never worse off than when it ignored exits. Release mode never shrinks a batch:
 * its factors are always the no-exit one, or the fused model's (`fusedFactor`) when it runs fused.
 */
import type { EarlyExitSection } from '../shared/early-exit-manifest.js';
import type { ExitMode, StageTiming } from '../shared/protocol.js';
import { ExitEvidence, type BatchExits, type ExitEvidenceOptions, type SurvivorEstimate } from './exit-evidence.js';
import { SegmentCosts, type SegmentCostOptions } from './segment-costs.js';

type Curve = [batchSize: number, ms: number][];

/** Linear interpolation over profiled batch sizes; proportional below the smallest and beyond the largest. */
function at(curve: Curve, batchSize: number): number {
  // NOTE: indexed, not destructured: admission calls this on every arrival, and array
  // destructuring allocated an iterator each time.
  if (batchSize <= 0) return 0;
  const first = curve[0]!;
  if (batchSize <= first[0]) return (first[1] * batchSize) / first[0];
  for (let i = 1; i < curve.length; i++) {
    const hi = curve[i]!;
    if (batchSize <= hi[0]) {
      const lo = curve[i - 1]!;
      return lo[1] + ((hi[1] - lo[1]) * (batchSize - lo[0])) / (hi[0] - lo[0]);
    }
  }
  const last = curve[curve.length - 1]!;
  return (last[1] * batchSize) / last[0];
}

function curveOf(byBatch: Record<string, number>): Curve {
  return Object.entries(byBatch)
    .map(([b, ms]) => [Number(b), ms] as [number, number])
    .sort((a, b) => a[0] - b[0]);
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a planned batch will do, relative to the whole model at its batch size. */
export interface BatchExitTiming {
  /** Duration factor at the planning quantile of the survivors (deadline checks). */
  boundFactor: number;
  /** Duration factor at the expected survivors (the worker's timeline). */
  expectedFactor: number;
  /** Rows alive at each segment, at the quantile and expected. */
  survivors: SurvivorEstimate;
}

/** One stage of a finished chain run, mapped to its segment. */
export interface SegmentRun {
  segment: number;
  rows: number;
  durationNs: number;
}

/** A chain's stage as the worker names it: `segment->SITE`, `final`, or an unfused head `rampSITE`. */
export function segmentOfStage(name: string, siteIds: readonly number[]): number | undefined {
  if (name === 'final') return siteIds.length;
  const match = /^(?:segment->|ramp)(\d+)$/.exec(name);
  if (!match) return undefined;
  const index = siteIds.indexOf(Number(match[1]));
  return index < 0 ? undefined : index;
}

/** Learning a release chain's factor: EWMA weight, samples before it replaces the profile's, clamps. */
const CHAIN_FACTOR_ALPHA = 0.1;
const MIN_CHAIN_SAMPLES = 5;
const MIN_CHAIN_FACTOR = 0.8;
const MAX_CHAIN_FACTOR = 4;
/**
 * Rows of chain runs folded in before timing()'s memo is recomputed (a collapse of the exit rates
 * clears it at once). NOTE: clearing it on every result (~400 a second in compact mode) had the
 * survivor and factor computations behind ~7 % of a compact controller's allocation; 32 rows move
 * estimates that rest on up to 1,024 by little.
 */
const MEMO_REFRESH_ROWS = 32;

export class ExitTimeline {
  private readonly whole: Curve;
  private readonly upTo = new Map<number, Curve>();
  private readonly headCost = new Map<number, Curve>();
  private readonly chainOverhead: Curve;
  private readonly segmentCosts = new Map<string, SegmentCosts>();
  private evidence: ExitEvidence | undefined;
  private evidenceKey = '';
  /** Release chain runs against the whole model, learned per ramp set and batch size. */
  private readonly releaseChain = new Map<string, Map<number, { factor: number; samples: number }>>();
  /**
   * timing()'s answers (by rows and batch size) since what they read last changed: admission
   * asks for the same few batches on every arrival, and recomputing them was ~15 % of what the
   * controller allocated at 1,100 requests/s (its GC pauses are where a busy host's misses came
   * from). Cleared by every method that changes the timeline (by `observe` only every
   * MEMO_REFRESH_ROWS rows, or on a collapse), and when the ramp set asked about changes. The
   * answers are shared: callers must not change them.
   */
  private readonly timingMemo = new Map<number, { mode: ExitMode; keepShare: number; timing: BatchExitTiming }>();
  /**
   * Release mode's pricing, memoised beside timing()'s answers and cleared with them: the chain's
   * factor by batch size, and the part of releaseChainGain that does not depend on the requests
   * waiting behind a batch. NOTE: `runsFused` asks both for every batch priced (several times per
   * arrival and per plan); computed afresh they were ~30 % of a release controller's allocation.
   */
  private readonly chainFactorMemo = new Map<number, number>();
  private readonly chainGainMemo = new Map<number, { earlyGain: number; toTheEnd: number; extra: number }>();
  private memoSiteIds: readonly number[] = [];
  /** Request rows folded in since the memo was last cleared (`observe`). */
  private rowsSinceMemo = 0;
  private lastCosts: { siteIds: readonly number[]; costs: SegmentCosts } | undefined;

  constructor(
    private readonly profile: EarlyExitSection['profile'],
    rampCostMs: Record<number, Record<string, number>>,
    private readonly evidenceOptions: Partial<ExitEvidenceOptions> = {},
    private readonly segmentOptions: Partial<SegmentCostOptions> = {},
  ) {
    this.whole = curveOf(profile.wholeMs);
    for (const [site, byBatch] of Object.entries(profile.siteUpToMs)) this.upTo.set(Number(site), curveOf(byBatch));
    for (const [site, byBatch] of Object.entries(rampCostMs)) this.headCost.set(Number(site), curveOf(byBatch));
    // Running as a chain costs extra launches and copies: chain / whole per batch size (≥ 1).
    this.chainOverhead = curveOf(Object.fromEntries(Object.entries(profile.chainMs).map(([b, ms]) => [b, Math.max(1, ms / profile.wholeMs[b]!)])));
  }

  static fromSection(ee: EarlyExitSection, evidenceOptions: Partial<ExitEvidenceOptions> = {}): ExitTimeline {
    return new ExitTimeline(ee.profile, Object.fromEntries(ee.ramps.map((r) => [r.siteId, r.costMs])), evidenceOptions);
  }

  private headMs(site: number, batchSize: number): number {
    const curve = this.headCost.get(site);
    return curve ? at(curve, batchSize) : 0;
  }

  /** Duration of a batch in which nobody leaves, as a multiple of the whole model's (≥ 1). */
  noExitFactor(siteIds: readonly number[], batchSize: number): number {
    const headsMs = siteIds.reduce((s, id) => s + this.headMs(id, batchSize), 0);
    return at(this.chainOverhead, batchSize) + headsMs / at(this.whole, batchSize);
  }

  /**
   * Duration of a release batch on the fused model (the whole model with these heads as extra
   * outputs, worker/fused-runner.ts), as a multiple of the whole model's: the heads' cost only.
   */
  fusedFactor(siteIds: readonly number[], batchSize: number): number {
    return 1 + siteIds.reduce((s, id) => s + this.headMs(id, batchSize), 0) / at(this.whole, batchSize);
  }

  /**
   * Folds in a release chain run that took `factor` times the whole model's expected duration at
   * its batch size. In serving, the chain costs more than the package profile says (on the
   * development VM 1.25-1.4x at batches of 1-2 against 1.04-1.06x alone: each segment's run and
   * the exit messages contend with the other worker for two cores), and release's choice between
   * the chain and the fused model must see that cost.
   */
  observeReleaseChain(siteIds: readonly number[], batchSize: number, factor: number): void {
    this.forgetMemos();
    const key = siteIds.join(',');
    let bySize = this.releaseChain.get(key);
    if (!bySize) this.releaseChain.set(key, (bySize = new Map()));
    const clamped = Math.min(MAX_CHAIN_FACTOR, Math.max(MIN_CHAIN_FACTOR, factor));
    const seen = bySize.get(batchSize);
    if (!seen) bySize.set(batchSize, { factor: clamped, samples: 1 });
    else {
      seen.factor += CHAIN_FACTOR_ALPHA * (clamped - seen.factor);
      seen.samples++;
    }
  }

  /**
   * A release chain run's duration against the whole model's: learned at this batch size once
   * seen; else the profile's no-exit factor, scaled as the nearest learned batch size's was. A
   * ramp set not run yet borrows that scale from the sets that have: what serving adds to the
   * profile (contention for the cores, the exit messages) belongs to the host, not the ramps, and
   * with the profile's bare 1.07x a new set looked cheap enough to run the chain until it had
   * learned its own cost at each batch size.
   */
  releaseChainFactor(siteIds: readonly number[], batchSize: number): number {
    this.useMemoOf(siteIds);
    let factor = this.chainFactorMemo.get(batchSize);
    if (factor === undefined) this.chainFactorMemo.set(batchSize, (factor = this.computeReleaseChainFactor(siteIds, batchSize)));
    return factor;
  }

  private computeReleaseChainFactor(siteIds: readonly number[], batchSize: number): number {
    const profiled = this.noExitFactor(siteIds, batchSize);
    const key = siteIds.join(',');
    const own = this.nearestLearnedChain(key, batchSize);
    if (own?.size === batchSize) return own.factor;
    let nearest = own;
    if (!nearest) {
      for (const other of this.releaseChain.keys()) {
        const found = other === key ? undefined : this.nearestLearnedChain(other, batchSize);
        if (found && (!nearest || Math.abs(Math.log(found.size / batchSize)) < Math.abs(Math.log(nearest.size / batchSize)))) nearest = found;
      }
    }
    return nearest ? (profiled * nearest.factor) / this.noExitFactor(nearest.siteIds, nearest.size) : profiled;
  }

  /** A ramp set's learned chain factor at the batch size nearest `batchSize` (enough samples only). */
  private nearestLearnedChain(key: string, batchSize: number): { siteIds: number[]; size: number; factor: number } | undefined {
    let nearest: { size: number; factor: number } | undefined;
    for (const [size, seen] of this.releaseChain.get(key) ?? []) {
      if (seen.samples < MIN_CHAIN_SAMPLES) continue;
      if (!nearest || Math.abs(Math.log(size / batchSize)) < Math.abs(Math.log(nearest.size / batchSize))) nearest = { size, factor: seen.factor };
    }
    return nearest && { siteIds: key === '' ? [] : key.split(',').map(Number), ...nearest };
  }

  /**
   * Release mode: what running a batch as the chain gains over the fused model, summed over the
   * requests it touches, in units of the whole model's duration (positive: the chain pays).
   * A row answered at ramp i finishes when the segments up to i have run (at the segments'
   * learned costs, so serving's real chain cost counts), instead of when the fused model ends;
   * every row that runs to the end, and each of `waitingBehind` requests served after this
   * batch, waits the chain's extra time. Without exit evidence nobody is expected to exit, so
   * the fused model is chosen (its feedback gathers the evidence).
   */
  releaseChainGain(siteIds: readonly number[], numRequests: number, batchSize: number, waitingBehind: number): number {
    this.useMemoOf(siteIds);
    const key = numRequests * 65_536 + batchSize;
    let parts = this.chainGainMemo.get(key);
    if (!parts) this.chainGainMemo.set(key, (parts = this.releaseChainParts(siteIds, numRequests, batchSize)));
    return parts.earlyGain - (parts.toTheEnd + waitingBehind) * parts.extra;
  }

  /** releaseChainGain without the requests waiting behind: the early answers' gain, the rows that run to the end, the chain's extra time. */
  private releaseChainParts(siteIds: readonly number[], numRequests: number, batchSize: number): { earlyGain: number; toTheEnd: number; extra: number } {
    const fusedEnd = this.fusedFactor(siteIds, batchSize);
    const chainEnd = this.releaseChainFactor(siteIds, batchSize);
    const alive = this.evidence?.survivors(numRequests, 0).expected ?? [numRequests];
    const costs = this.costsFor(siteIds);
    const segmentNs = [...siteIds, -1].map((_, s) => costs.segmentNs(s, batchSize));
    const chainNs = segmentNs.reduce((a, b) => a + b, 0);
    let earlyGain = 0;
    let doneNs = 0;
    for (let i = 0; i < siteIds.length && i + 1 < alive.length; i++) {
      doneNs += segmentNs[i]!;
      const exits = alive[i]! - alive[i + 1]!;
      earlyGain += exits * (fusedEnd - (chainNs > 0 ? (chainEnd * doneNs) / chainNs : chainEnd));
    }
    const toTheEnd = alive.length === siteIds.length + 1 ? alive.at(-1)! : numRequests;
    return { earlyGain, toTheEnd, extra: chainEnd - fusedEnd };
  }

  /** The segments' cost lines for a ramp set (segment s ends at siteIds[s]; the last at the output). */
  costsFor(siteIds: readonly number[]): SegmentCosts {
    // The same ramp set is asked about many times per arrival: skip building its key.
    if (this.lastCosts && sameIds(siteIds, this.lastCosts.siteIds)) return this.lastCosts.costs;
    const costs = this.costsForKey(siteIds);
    this.lastCosts = { siteIds: [...siteIds], costs };
    return costs;
  }

  private costsForKey(siteIds: readonly number[]): SegmentCosts {
    const key = siteIds.join(',');
    let costs = this.segmentCosts.get(key);
    if (!costs) {
      const prior = [...siteIds, -1].map((site, s) => {
        const byBatch: Record<number, number> = {};
        for (const b of this.profile.batchSizes) {
          const overhead = at(this.chainOverhead, b);
          const endMs = site < 0 ? at(this.whole, b) : at(this.upTo.get(site)!, b);
          const beginMs = s === 0 ? 0 : at(this.upTo.get(siteIds[s - 1]!)!, b);
          byBatch[b] = 1e6 * (overhead * Math.max(0, endMs - beginMs) + (site < 0 ? 0 : this.headMs(site, b)));
        }
        return byBatch;
      });
      costs = new SegmentCosts(prior, this.segmentOptions);
      this.segmentCosts.set(key, costs);
    }
    return costs;
  }

  /**
   * Starts over the exit evidence when the exit configuration (`key`: mode, ramps and thresholds)
   * changes, seeded with the monitor's estimate of the share answered at each ramp under it.
   */
  configure(key: string, numRamps: number, seedShares?: readonly number[], basisRows = 0): void {
    if (key === this.evidenceKey && this.evidence) return;
    this.forgetMemos();
    this.evidenceKey = key;
    this.evidence = new ExitEvidence(numRamps, this.evidenceOptions);
    this.evidence.reset(seedShares, basisRows);
  }

  /** The evidence for the current configuration (undefined before the first `configure`). */
  get currentEvidence(): ExitEvidence | undefined {
    return this.evidence;
  }

  /** The memos answer for one ramp set at a time: another set asked about starts them over. */
  private useMemoOf(siteIds: readonly number[]): void {
    if (sameIds(siteIds, this.memoSiteIds)) return;
    this.forgetMemos();
    this.memoSiteIds = [...siteIds];
  }

  /** Clears every memoised answer: what they read has changed. */
  private forgetMemos(): void {
    this.timingMemo.clear();
    this.chainFactorMemo.clear();
    this.chainGainMemo.clear();
  }

  /**
   * A batch of `numRequests` request rows (padded to `batchSize`) with the given ramps: its
   * duration factors against the whole model at `batchSize`.
   */
  timing(mode: ExitMode, siteIds: readonly number[], numRequests: number, batchSize: number, keepShare: number): BatchExitTiming {
    this.useMemoOf(siteIds);
    const key = numRequests * 65_536 + batchSize;
    const seen = this.timingMemo.get(key);
    if (seen && seen.mode === mode && seen.keepShare === keepShare) return seen.timing;
    const timing = this.computeTiming(mode, siteIds, numRequests, batchSize, keepShare);
    this.timingMemo.set(key, { mode, keepShare, timing });
    return timing;
  }

  private computeTiming(mode: ExitMode, siteIds: readonly number[], numRequests: number, batchSize: number, keepShare: number): BatchExitTiming {
    const noExit = this.noExitFactor(siteIds, batchSize);
    if (mode === 'release' || siteIds.length === 0 || !this.evidence) {
      const everyone = new Array<number>(siteIds.length + 1).fill(mode === 'release' ? batchSize : numRequests);
      const survivors = { bound: everyone, expected: [...everyone], informed: false };
      const factor = mode === 'release' ? this.releaseChainFactor(siteIds, batchSize) : this.factorOf(siteIds, everyone, batchSize, noExit);
      return { boundFactor: factor, expectedFactor: factor, survivors };
    }
    const survivors = this.evidence.survivors(numRequests, keepShare);
    return {
      boundFactor: this.factorOf(siteIds, survivors.bound, batchSize, noExit),
      expectedFactor: this.factorOf(siteIds, survivors.expected, batchSize, noExit),
      survivors,
    };
  }

  /** The factor of a chain run in which segment s ran `rows[s]` rows. */
  factorOf(siteIds: readonly number[], rows: readonly number[], batchSize: number, noExit = this.noExitFactor(siteIds, batchSize)): number {
    const costs = this.costsFor(siteIds);
    const fullNs = costs.uniformChainNs(batchSize);
    return fullNs > 0 ? (noExit * costs.chainNs(rows)) / fullNs : noExit;
  }

  /**
   * How a chain run of `totalNs` is expected to split over its segments, named as workers report
   * them (`segment->SITE`, then `final`), when segment s runs `rows[s]` rows.
   */
  expectedStages(siteIds: readonly number[], rows: readonly number[], totalNs: number): StageTiming[] {
    const costs = this.costsFor(siteIds);
    const chainNs = costs.chainNs(rows);
    return [...siteIds, -1].map((site, s) => ({
      name: site < 0 ? 'final' : `segment->${site}`,
      durationNs: chainNs > 0 ? (totalNs * costs.segmentNs(s, rows[s] ?? 0)) / chainNs : 0,
      numRows: rows[s] ?? 0,
    }));
  }

  /** Folds in a finished chain run: exits for the evidence, stage timings for the segment lines. */
  observe(siteIds: readonly number[], exits: BatchExits | undefined, runs: readonly SegmentRun[], nowNs: number): void {
    const collapses = this.evidence?.collapses ?? 0;
    const costs = this.costsFor(siteIds);
    // Stages of one segment (a segment and its unfused head) add up.
    const bySegment = new Map<number, SegmentRun>();
    for (const run of runs) {
      const seen = bySegment.get(run.segment);
      if (seen) seen.durationNs += run.durationNs;
      else bySegment.set(run.segment, { ...run });
    }
    for (const run of bySegment.values()) costs.observe(run.segment, run.rows, run.durationNs);
    if (exits && this.evidence) this.evidence.observe(exits, nowNs);
    // A collapse restarts the evidence: the planner must see it at once. Otherwise one batch moves
    // estimates over ~1,000 rows by little, and the memo is refreshed every MEMO_REFRESH_ROWS.
    this.rowsSinceMemo += runs[0]?.rows ?? exits?.reached[0] ?? 1;
    if (this.rowsSinceMemo >= MEMO_REFRESH_ROWS || (this.evidence?.collapses ?? 0) !== collapses) {
      this.forgetMemos();
      this.rowsSinceMemo = 0;
    }
  }
}
