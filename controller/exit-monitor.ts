/**
 * Watches one early-exit model in service and re-tunes its ramp thresholds (pure: the controller
 * feeds it INFER feedback and applies what it returns).
 *
 * Every INFER with ramps reports, per request row, each active ramp's confidence and prediction
 * and the full model's prediction (release mode: every row; compact mode: rows that did not exit
 * plus the monitoring sample of rows that did, which stand for 1 / sample-rate rows each). The
 * monitor keeps a sliding window of these samples, tracks exits per ramp and the agreement of the
 * answers actually given, and re-tunes (see threshold-tuner.ts) every `retuneEvery` samples and
 * whenever the agreement of the recent answers falls below 1 − budget. Every change is returned
 * with its reason, so the caller can log it.
 */
import type { EarlyExitPlan, ExitFeedback } from '../shared/protocol.js';
import { adjustRamps, type CandidateSite } from './ramp-adjuster.js';
import {
  DISABLED_THRESHOLD,
  tuneThresholds,
  type ThresholdSearch,
  type TunerOptions,
  type TunerRamp,
  type TunerResult,
  type TunerSample,
} from '../shared/threshold-tuner.js';
import { exitShareUnder, ExitShareWatch, recentDisagreementLowerBound } from './drift-watch.js';

export interface ExitMonitorOptions {
  /**
   * Samples kept for tuning. Default 512. In compact mode, where a monitored exit stands for
   * `monitorWeight` requests, the window instead spans up to `windowSize × monitorWeight` requests
   * (at most 4 × `windowSize` samples): the tuner's bound counts a weighted sample once, so a
   * 512-sample window holds too few exit observations (~150) to certify a 1 % budget at all.
   */
  windowSize: number;
  /** Re-tune after this many new samples. Default 128 (the paper's ramp period, in samples). */
  retuneEvery: number;
  /** Allowed disagreement with the full model. Default 0.01. */
  budget: number;
  /**
   * The share of the budget the tuner's bound may use (the violation and drift checks and the
   * adjuster's judgement of a ramp hold the whole budget). Default 1: the budget holds over the
   * window. Short windows (bench:adapt judges tenths of a run, ~400 requests) then fall below it
   * by chance and while the window lags a drift (bench:adapt, one run: 2 / 0 / 2 of 10 tenths in
   * class-mix / noise / shift). At 0.5 none did (0 / 0 / 0; the demo 0 of 10 against 1), for fewer
   * exits (79 / 43 / 54 % instead of 91 / 49 / 67 %; the demo 82 % instead of 88 %, 14 % instead of
   * 28 % at its first ramp). Not the default: on the demo's stream those exits are compact mode's
   * capacity (bench:exits: compute-bound ceiling 1.08x vanilla's instead of 1.27x, throughput 0.94x
   * instead of 1.05-1.07x, 70 % SLO 99.30-99.72 % instead of 99.77-99.97 %). A window of unweighted
   * samples holds windowSize / share of them, so release mode can certify the smaller budget.
   */
  budgetShare: number;
  /** z of the tuner's one-sided bound on the disagreement rate. Default 1.645 (95 %). */
  boundZ: number;
  /** Compact mode sampling: each monitored exited row stands for this many. Default 10. */
  monitorWeight: number;
  /**
   * No re-tuning before the window holds this many samples. Default 300: with fewer, even zero
   * disagreements cannot bound the rate below 1 % (Wilson, 95 %), so the package's offline
   * thresholds (validated on its own split) are kept until then.
   */
  minSamples: number;
  /** Consider activating or deactivating a ramp after this many samples. Default 512. */
  adjustEvery: number;
  /** At most this many active ramps. Default 3 (Apparate's CV budget). */
  maxRamps: number;
  /** Active ramps may cost at most this fraction of the model. Default 0.05. */
  overheadBudget: number;
  /**
   * What one change of the ramp set costs (ms), to be paid back over the 4 × `adjustEvery`
   * requests it is held for at least (ramp-adjuster.ts). Default 60: each of two holders builds
   * the new chain in service, measured 15-45 ms per build on fmnist-resnet.
   */
  switchCostMs: number;
  /**
   * `static`: observe and report, never re-tune or change ramps: the thresholds stay those the
   * package chose on its validation split (BranchyNet/DeeBERT-style), the baseline online tuning
   * is compared against. Default `online`.
   */
  tuning: 'online' | 'static';
  /**
   * Drift detection (compact mode, where only a sample of exits is labelled and the window spans
   * thousands of requests; release labels every row and its window of 512 follows a drift within
   * one period): the most recent this many samples are tested against the budget after every
   * `driftCheckEvery` new ones. When the answers they gave disagree with the full model more than
   * the budget allows, beyond reasonable doubt (the one-sided lower bound at `driftZ`), the window
   * is cut to them and the thresholds re-tuned on them alone: a window of thousands of older
   * samples would otherwise outvote a shift for as long as it takes to replace them. Default 256,
   * 32, 3: the tuner runs close to the budget and this test is repeated every 32 samples, so at
   * 1.645 it took the demo's stationary stream for a drift every 2-3 s (each costing a cold start).
   */
  driftSegment: number;
  driftCheckEvery: number;
  driftZ: number;
  /**
   * Compact mode labels only a 10 % sample of its exits, too few to see a shift for thousands of
   * requests. But every row, labelled or not, shows whether it exited, and the window says what
   * share should exit under the thresholds served: when the recent share (over ~128 rows) leaves
   * the window's by more than this many standard errors, the inputs no longer look like the
   * window's (whatever the thresholds did, they did to both): the monitor asks for every exit to be
   * labelled for the next 2 x `driftSegment` rows (`suspectsDrift`), and once `driftSegment` samples
   * came after the change, it re-tunes on them alone (the samples from before describe inputs that
   * are gone). Default 4.
   */
  suspicionZ: number;
  /**
   * What runs the threshold search when it is not deferred: `tuneThresholds` in-process by default
   * (offline replays and benches may give another). The controller defers its searches to a thread
   * of its own (tuner-thread.ts: on the controller's heap the search made its garbage collector copy
   * and promote ten to a hundred times more).
   */
  search: ThresholdSearch;
  /**
   * Deferred searches: the monitor does not call `search` itself but asks for its searches
   * (`takeSearchRequest`) and applies their results when the caller hands them back
   * (`completeSearch`), so that the controller serves on while a thread searches. At most one
   * search is out at a time; a re-tune that falls due meanwhile is asked for when it is back, and a
   * result computed on a window cut or a ramp set changed since is dropped. Default false (the
   * search runs inside `observe` and `maybeAdjust`, as offline replays and tests use it).
   * NOTE: the controller once waited for its search thread (`Atomics.wait`); on a 2-core host at
   * ~90 % CPU a search took 11-29 ms there (window 1,000-1,600 samples) and froze planning as long.
   */
  deferSearch: boolean;
}

export const DEFAULT_EXIT_MONITOR_OPTIONS: ExitMonitorOptions = {
  windowSize: 512,
  retuneEvery: 128,
  budget: 0.01,
  budgetShare: 1,
  boundZ: 1.645,
  monitorWeight: 10,
  minSamples: 300,
  adjustEvery: 512,
  maxRamps: 3,
  overheadBudget: 0.05,
  switchCostMs: 60,
  tuning: 'online',
  driftSegment: 256,
  driftCheckEvery: 32,
  driftZ: 3,
  suspicionZ: 4,
  search: tuneThresholds,
  deferSearch: false,
};

/** Rows the recent exit share follows (an EWMA span). */
const RECENT_ROWS = 128;

export interface RampSetChange {
  model: string;
  reason: string;
  before: number[];
  after: number[];
  thresholds: number[];
}

export interface ThresholdChange {
  model: string;
  /** `shift`: the exit share left the window's prediction; `drift`: the recent answers broke the budget. */
  reason: 'periodic' | 'violation' | 'shift' | 'drift' | 'initial' | 'fixed';
  before: number[];
  after: number[];
  expectedSavingMs: number;
  disagreementUpperBound: number;
  numSamples: number;
}

/** One threshold search: what `ExitMonitorOptions.search` is called with. */
export interface SearchJob {
  samples: TunerSample[];
  ramps: TunerRamp[];
  wholeMs: number;
  overrides: Partial<TunerOptions>;
}

/** The searches a monitor in deferred mode waits on; their results go back, in order, to `completeSearch`. */
export interface SearchRequest {
  id: number;
  jobs: SearchJob[];
}

/** What a completed search changed. */
export interface SearchOutcome {
  thresholds?: ThresholdChange;
  ramps?: RampSetChange;
}

/** Search ids, unique in the process: a result for a monitor that was replaced meanwhile matches nothing. */
let lastSearchId = 0;

/** Re-tune reasons, least urgent first: a due re-tune keeps the most urgent. */
const RETUNE_URGENCY: ThresholdChange['reason'][] = ['periodic', 'initial', 'fixed', 'violation', 'shift', 'drift'];

/** A change of thresholds or ramps, and a monitor's statistics, are defined where `escapement status` is. */
import type { ExitChangeRecord, ExitStats } from '../shared/status-schema.js';

/** Changes `stats()` keeps (the most recent); thresholds.csv keeps them all. */
const MAX_CHANGE_RECORDS = 32;

export class ExitMonitor {
  private options: ExitMonitorOptions;
  private window: (TunerSample & { answeredBy: number })[] = [];
  private sinceRetune = 0;
  private sinceAdjust = 0;
  private sinceDriftCheck = 0;
  /** Sites deactivated recently, with the sample count at which they may come back. */
  private readonly cooldown = new Map<number, number>();
  private samplesSeen = 0;
  /** Running sums over the window (`tally`): Σw, samples of weight > 1, Σw of the answers that agreed, Σw and Σw² of the exits. */
  private windowWeight = 0;
  private weightedSamples = 0;
  private agreeWeight = 0;
  private exitWeight = 0;
  private exitWeightSq = 0;
  /** Every row observed, labelled or not, and the exit shares that watch them under one set of thresholds (see `suspicionZ`). */
  private rowsSeen = 0;
  private readonly exitShare: ExitShareWatch;
  private suspectUntilRow = 0;
  /** Samples seen when the exit share last moved (a change point), until the window is cut there. */
  private changeAtSample: number | undefined;
  private numRetunes = 0;
  private exitsPerRamp: number[];
  private fullAnswers = 0;
  private readonly changes: ExitChangeRecord[] = [];
  /** Bumped when the window is cut or the ramp set changes: a search over the window before is stale. */
  private generation = 0;
  /** Deferred mode: the search out, and what to do with its results. */
  private awaiting: { id: number; generation: number; finish: (results: TunerResult[]) => SearchOutcome } | undefined;
  /** Deferred mode: the search asked for and not yet taken. */
  private outbox: SearchRequest | undefined;
  /** Deferred mode: a re-tune that fell due while a search was out. */
  private dueRetune: ThresholdChange['reason'] | undefined;

  constructor(
    readonly model: string,
    private ramps: TunerRamp[],
    private thresholds: number[],
    private readonly wholeMs: number,
    options: Partial<ExitMonitorOptions> = {},
    /** Every site of the package with a trained ramp (for activation). */
    private readonly candidates: CandidateSite[] = [],
  ) {
    this.options = { ...DEFAULT_EXIT_MONITOR_OPTIONS, ...options };
    this.exitShare = new ExitShareWatch(RECENT_ROWS, this.options.suspicionZ);
    this.exitsPerRamp = ramps.map(() => 0);
  }

  /** Samples in the window. */
  get numSamples(): number {
    return this.window.length;
  }

  /**
   * Kish's effective sample size of the window's exits, (Σw)² / Σw² over the samples answered
   * early: what the tuner's bound on their disagreement rests on (exit-control.ts labels every
   * exit while it is small).
   */
  get effectiveExitSamples(): number {
    return this.exitWeightSq === 0 ? 0 : (this.exitWeight * this.exitWeight) / this.exitWeightSq;
  }

  /**
   * Adds (sign 1) or removes (-1) a sample's part in the window's running sums: its requests, its
   * agreement, its exits (`effectiveExitSamples`). NOTE: recomputing them over the window on every
   * result (up to 2,048 samples, ~400 results a second in compact mode) was most of what the
   * monitor cost the controller between re-tunes.
   */
  private tally(s: { answeredBy: number; weight?: number; predictions: readonly number[]; finalPrediction: number }, sign: 1 | -1): void {
    const w = s.weight ?? 1;
    this.windowWeight += sign * w;
    if (w > 1) this.weightedSamples += sign;
    if (s.answeredBy < 0 || s.predictions[s.answeredBy] === s.finalPrediction) this.agreeWeight += sign * w;
    if (s.answeredBy < 0) return;
    this.exitWeight += sign * w;
    this.exitWeightSq += sign * w * w;
  }

  /** Which ramp would answer each sample under the thresholds in force, and the window's sums, after new thresholds or ramps. */
  private rejudgeWindow(): void {
    for (const s of this.window) s.answeredBy = s.confidences.findIndex((c, r) => c >= this.thresholds[r]!);
    this.retally();
  }

  /** The running sums over the whole window, after a change to many samples (a cut, new thresholds or ramps). */
  private retally(): void {
    this.windowWeight = 0;
    this.weightedSamples = 0;
    this.agreeWeight = 0;
    this.exitWeight = 0;
    this.exitWeightSq = 0;
    for (const s of this.window) this.tally(s, 1);
  }

  get currentThresholds(): number[] {
    return [...this.thresholds];
  }

  get activeSiteIds(): number[] {
    return this.ramps.map((r) => r.siteId);
  }

  /**
   * Every `adjustEvery` samples: at most one ramp activated or deactivated (ramp-adjuster.ts).
   * The window is kept: a removed ramp's column is dropped (what the other ramps saw stays true),
   * and an added ramp's is unknown in the samples from before it (NaN: they never exit there).
   * NOTE: restarting the window instead cost every change its ramps' thresholds: a tuner that
   * starts over on a few hundred samples cannot certify the budget and turns the ramps off until
   * thousands came in (bench:adapt's class-mix: exits fell to 8 % of a tenth after a change).
   */
  maybeAdjust(): RampSetChange | undefined {
    if (this.options.tuning === 'static' || this.sinceAdjust < this.options.adjustEvery) return undefined;
    if (this.awaiting) return undefined; // deferred: asked again on the next result
    // Judge the set on the samples that saw every active ramp. NOTE: this copy of the window, made
    // before the cheap test above (on every result), was 30 % of a compact controller's allocation.
    const known = this.knownSamples();
    if (known.length < this.options.minSamples) return undefined;
    this.sinceAdjust = 0;
    // Judge each ramp by what it could save at thresholds the window's point estimate allows, not
    // by the bound-limited ones in force: a ramp kept off for lack of evidence is not useless (in
    // compact mode every new ramp set starts that way, and judging it so made the set thrash).
    const job = { samples: known, ramps: [...this.ramps], wholeMs: this.wholeMs, overrides: { budget: this.options.budget, z: 0 } };
    if (!this.options.deferSearch) return this.adjustBy(known, runJob(this.options.search, job).thresholds);
    this.defer([job], ([potential]) => ({ ramps: this.adjustBy(this.knownSamples(), potential!.thresholds) }));
    return undefined;
  }

  /** The ramp-set decision, given each active ramp's potential threshold (see `maybeAdjust`). */
  private adjustBy(known: (TunerSample & { answeredBy: number })[], potential: number[]): RampSetChange | undefined {
    for (const [site, until] of this.cooldown) if (until <= this.samplesSeen) this.cooldown.delete(site);
    const heldRequests = 4 * this.options.adjustEvery;
    const adjuster = { ...this.options, minGainMsPerRequest: this.options.switchCostMs / heldRequests };
    const decision = adjustRamps(known, this.ramps, potential, this.candidates, this.wholeMs, adjuster, new Set(this.cooldown.keys()));
    if (decision.action === 'keep') return undefined;
    const before = this.activeSiteIds;
    if (decision.action === 'deactivate') {
      const i = this.ramps.findIndex((r) => r.siteId === decision.siteId);
      const drop = <T>(values: T[]) => values.filter((_, k) => k !== i);
      this.ramps = drop(this.ramps);
      this.thresholds = drop(this.thresholds);
      for (const s of this.window) Object.assign(s, { confidences: drop(s.confidences), predictions: drop(s.predictions) });
      this.cooldown.set(decision.siteId, this.samplesSeen + heldRequests);
    } else {
      const site = this.candidates.find((c) => c.siteId === decision.siteId)!;
      const at = this.ramps.findIndex((r) => r.upToMs > site.upToMs);
      const index = at < 0 ? this.ramps.length : at;
      this.ramps.splice(index, 0, { siteId: site.siteId, upToMs: site.upToMs, costMs: site.costMs });
      // A new ramp answers nobody until tuned on served inputs. Its validation threshold was
      // chosen on the package's clean split, and after a drift (which is when slots free up) it
      // broke the budget (bench:adapt's noise and shift: 94-96 % in the next tenth). In release
      // mode this start was seen to make the planner run the chain for some batches (60 % phase
      // of bench:exits at 81-82 % SLO, two runs); the likely cause, a new ramp set's chain priced
      // at its bare profile until seen, is fixed (ExitTimeline.releaseChainFactor borrows what
      // serving showed for other sets), and a release run with a ramp added after it ran no chain.
      this.thresholds.splice(index, 0, DISABLED_THRESHOLD);
      for (const s of this.window) {
        s.confidences.splice(index, 0, Number.NaN);
        s.predictions.splice(index, 0, -1);
      }
    }
    this.generation++;
    this.rejudgeWindow();
    this.exitsPerRamp = this.ramps.map(() => 0);
    this.fullAnswers = 0;
    this.remember('ramps', decision.reason, before, this.activeSiteIds);
    return { model: this.model, reason: decision.reason, before, after: this.activeSiteIds, thresholds: this.currentThresholds };
  }

  /** The disagreement the tuner's bound may reach (see `budgetShare`). */
  private get tuningBudget(): number {
    return this.options.budget * this.options.budgetShare;
  }

  /** The window's samples that saw every active ramp (all of them, but after a ramp was added). */
  private knownSamples(): (TunerSample & { answeredBy: number })[] {
    return this.window.filter((s) => s.confidences.every((c) => !Number.isNaN(c)));
  }

  private remember(kind: ExitChangeRecord['kind'], reason: string, before: number[], after: number[]): void {
    this.changes.push({ atSample: this.samplesSeen, kind, reason, before: [...before], after: [...after] });
    if (this.changes.length > MAX_CHANGE_RECORDS) this.changes.shift();
  }

  /** Counts answers of a batch the model ran whole (no ramps, no feedback): they teach nothing. */
  countFullAnswers(numAnswers: number): void {
    this.fullAnswers += numAnswers;
  }

  /** Folds in one INFER's feedback; returns a threshold change when it re-tuned. */
  observe(plan: EarlyExitPlan, feedback: ExitFeedback): ThresholdChange | undefined {
    const siteOrder = this.ramps.map((r) => feedback.siteIds.indexOf(r.siteId));
    if (siteOrder.some((i) => i < 0)) return undefined; // feedback for another ramp set
    const planThresholds = this.ramps.map((r) => plan.ramps.find((p) => p.siteId === r.siteId)?.threshold ?? Number.POSITIVE_INFINITY);
    const planKey = `${this.activeSiteIds.join(' ')}|${planThresholds.join(' ')}`;
    // A compact batch labels its kept exits; each stands for the exits its sample was drawn from:
    // 1 / the plan's monitoring fraction (1 at a cold start or a suspected drift, when every row is
    // kept). Without the fraction (an older controller's plan), a batch that kept every row is full
    // monitoring and any other stands for `monitorWeight`.
    // NOTE: judging by the rows that reported a final answer (as this once did) weighed a kept exit
    // as 1 whenever the batch's other exits left, so small batches under-counted exits and their
    // disagreements (the window predicted 82 % exits where 91 % were served).
    const exitWeight =
      plan.mode !== 'compact'
        ? 1
        : plan.monitorFraction !== undefined && plan.monitorFraction > 0
          ? Math.round(1 / plan.monitorFraction)
          : plan.keepRows.length < feedback.finalPredictions.length
            ? this.options.monitorWeight
            : 1;
    feedback.finalPredictions.forEach((finalPrediction, row) => {
      const confidences = siteOrder.map((i) => feedback.confidences[i]![row]!);
      const predictions = siteOrder.map((i) => feedback.predictions[i]![row]!);
      const answeredBy = confidences.findIndex((c, r) => c >= planThresholds[r]!);
      if (plan.mode === 'compact') this.watchExits(answeredBy >= 0, planThresholds, planKey);
      // Count every answer; only rows that ran to the end can teach the tuner.
      if (answeredBy >= 0) this.exitsPerRamp[answeredBy]! += 1;
      else this.fullAnswers += 1;
      if (finalPrediction < 0 || confidences.some((c) => !Number.isFinite(c))) return;
      const weight = answeredBy >= 0 ? exitWeight : 1;
      const sample = { confidences, predictions, finalPrediction, weight, answeredBy };
      this.window.push(sample);
      this.tally(sample, 1);
      this.sinceRetune++;
      this.sinceAdjust++;
      this.sinceDriftCheck++;
      this.samplesSeen++;
    });
    this.trimWindow();
    if (this.options.tuning === 'static') return undefined;
    if (this.changeAtSample !== undefined && this.samplesSeen - this.changeAtSample >= this.options.driftSegment) {
      // Enough samples since the inputs changed: judge by them alone.
      this.window = this.window.slice(-(this.samplesSeen - this.changeAtSample));
      this.generation++;
      this.retally();
      this.changeAtSample = undefined;
      this.sinceDriftCheck = 0;
      return this.retune('shift');
    }
    if (plan.mode === 'compact' && this.sinceDriftCheck >= this.options.driftCheckEvery) {
      this.sinceDriftCheck = 0;
      if (this.recentDisagreementLowerBound() > this.options.budget) {
        // The recent answers break the budget: judge by them alone. Fewer samples than the tuner
        // needs to certify a ramp leave it off; compact mode then monitors every exit again (a
        // cold start, exit-control.ts), so the evidence for new thresholds comes back quickly.
        this.window = this.window.slice(-this.options.driftSegment);
        this.generation++;
        this.retally();
        this.changeAtSample = undefined;
        return this.retune('drift');
      }
    }
    if (this.window.length < this.options.minSamples) return undefined;
    if (this.windowAgreement() < 1 - this.options.budget) return this.retune('violation');
    // A re-tune costs time proportional to the window (5 ms at 2,048 samples, on the controller's
    // event loop), so a longer window (compact mode) re-tunes less often: a constant CPU share.
    if (this.sinceRetune >= Math.max(this.options.retuneEvery, this.window.length / 4)) return this.retune('periodic');
    return undefined;
  }

  /**
   * Keeps `windowSize` samples while every one stands for itself (release mode; compact mode while
   * it labels every exit), divided by the budget share (half the budget needs twice the evidence);
   * with weighted samples, up to `windowSize × monitorWeight` requests and 4 × `windowSize` samples.
   * NOTE: keeping compact mode's longer window while it labels every exit (a drift suspected, too
   * few effective exits) was tried: under bench:tuner's gradual noise drift it lagged, and the
   * worst replay fell from 99.49 to 98.90 %.
   */
  private trimWindow(): void {
    const { windowSize, monitorWeight } = this.options;
    while (this.window.length > windowSize) {
      const maxSamples = this.weightedSamples > 0 ? 4 * windowSize : Math.round(windowSize / this.options.budgetShare);
      if (this.window.length <= maxSamples && this.windowWeight <= windowSize * monitorWeight) break;
      this.tally(this.window.shift()!, -1);
    }
  }

  /** Weighted share of the window's requests answered at each ramp under the current thresholds. */
  exitRates(): number[] {
    const counts = this.ramps.map(() => 0);
    let total = 0;
    for (const s of this.window) {
      const w = s.weight ?? 1;
      total += w;
      const r = s.confidences.findIndex((c, i) => c >= this.thresholds[i]!);
      if (r >= 0) counts[r]! += w;
    }
    return counts.map((c) => (total === 0 ? 0 : c / total));
  }

  /** Whether the recent exit share moved enough to label every exit for a while (compact mode; see `suspicionZ`). */
  get suspectsDrift(): boolean {
    return this.rowsSeen < this.suspectUntilRow;
  }

  /** Folds one row into the exit-share watch; suspects a drift when the window no longer predicts it (see `suspicionZ`). */
  private watchExits(exited: boolean, thresholds: readonly number[], key: string): void {
    this.rowsSeen++;
    const armed = this.options.tuning !== 'static' && this.window.length >= this.options.minSamples;
    if (this.exitShare.observe(exited, key, () => exitShareUnder(this.window, thresholds), armed)) {
      this.suspectUntilRow = this.rowsSeen + 2 * this.options.driftSegment;
      this.changeAtSample ??= this.samplesSeen;
    }
  }

  /** See `recentDisagreementLowerBound` (drift-watch.ts): over the last `driftSegment` samples, at `driftZ`. */
  recentDisagreementLowerBound(): number {
    return recentDisagreementLowerBound(this.window, this.options.driftSegment, this.options.driftZ);
  }

  /** Agreement of the answers actually given (weighted) over the window. */
  windowAgreement(): number {
    return this.windowWeight === 0 ? 1 : this.agreeWeight / this.windowWeight;
  }

  /**
   * Holds `thresholds` (one per active ramp, depth order) from now on, never re-tuned: an
   * operator's choice, or compare's oracle schedule. The window and its exit rates are kept.
   */
  fix(thresholds: readonly number[]): ThresholdChange {
    if (thresholds.length !== this.ramps.length) throw new RangeError(`${this.model} has ${this.ramps.length} active ramps, not ${thresholds.length}`);
    this.options = { ...this.options, tuning: 'static' };
    this.generation++;
    this.dueRetune = undefined;
    const before = this.thresholds;
    this.thresholds = [...thresholds];
    this.rejudgeWindow();
    this.remember('thresholds', 'fixed', before, this.thresholds);
    return {
      model: this.model,
      reason: 'fixed',
      before,
      after: this.currentThresholds,
      expectedSavingMs: 0,
      disagreementUpperBound: 0,
      numSamples: this.window.length,
    };
  }

  /** Re-tunes now (or, deferred, asks for the search and applies it when it is back). */
  retune(reason: ThresholdChange['reason']): ThresholdChange | undefined {
    this.sinceRetune = 0;
    if (this.awaiting) {
      // Deferred, a search out: this re-tune follows it (a violation asks on every result till then).
      if (this.dueRetune === undefined || RETUNE_URGENCY.indexOf(reason) > RETUNE_URGENCY.indexOf(this.dueRetune)) this.dueRetune = reason;
      return undefined;
    }
    const { jobs, choose } = this.tuneJobs();
    if (!this.options.deferSearch) return this.applyTune(reason, choose(jobs.map((job) => runJob(this.options.search, job))));
    this.defer(jobs, (results) => ({ thresholds: this.applyTune(reason, choose(results)) }));
    return undefined;
  }

  /** Deferred mode: the search this monitor asks for, once (the caller runs it and calls `completeSearch`). */
  takeSearchRequest(): SearchRequest | undefined {
    const request = this.outbox;
    this.outbox = undefined;
    return request;
  }

  /**
   * Deferred mode: the results of search `id`, in the order of its jobs (undefined: it failed).
   * Applies them unless the window was cut or the ramp set changed since it was asked for, then
   * asks for a re-tune that fell due meanwhile (`takeSearchRequest`).
   */
  completeSearch(id: number, results: TunerResult[] | undefined): SearchOutcome {
    const awaiting = this.awaiting;
    if (!awaiting || awaiting.id !== id) return {};
    this.awaiting = undefined;
    const outcome = results && awaiting.generation === this.generation ? awaiting.finish(results) : {};
    const due = this.dueRetune;
    this.dueRetune = undefined;
    if (due !== undefined && results && this.options.tuning !== 'static') this.retune(due);
    return outcome;
  }

  /** Whether a deferred search is out. */
  get searching(): boolean {
    return this.awaiting !== undefined;
  }

  private defer(jobs: SearchJob[], finish: (results: TunerResult[]) => SearchOutcome): void {
    const id = ++lastSearchId;
    this.awaiting = { id, generation: this.generation, finish };
    this.outbox = { id, jobs };
  }

  private applyTune(reason: ThresholdChange['reason'], result: TunerResult): ThresholdChange | undefined {
    const before = this.thresholds;
    // After a drift the window is a few hundred samples: the tuner, searching many thresholds on
    // so few, finds some too good to be true (bench:adapt's class-mix: tenths at 97-98 % after such
    // re-tunes). So a drift only ever raises thresholds; the periodic re-tunes lower them again as
    // the evidence grows.
    const after = reason === 'drift' || reason === 'shift' ? result.thresholds.map((t, i) => Math.max(t, before[i]!)) : result.thresholds;
    this.thresholds = after;
    this.numRetunes++;
    // Judge the window by the new thresholds from now on, so one violation triggers one re-tune.
    this.rejudgeWindow();
    if (before.every((t, i) => t === after[i])) return undefined;
    this.remember('thresholds', reason, before, after);
    return {
      model: this.model,
      reason,
      before,
      after: [...after],
      expectedSavingMs: result.expectedSavingMs,
      disagreementUpperBound: result.disagreementUpperBound,
      numSamples: this.window.length,
    };
  }

  /**
   * The searches for the best thresholds the window certifies, and how their results choose. After a ramp was added, two candidates: the whole
   * window with the new ramp kept off (its evidence for the other ramps stays valid), and the
   * samples since it came (every ramp seen), once they are enough to tune on; the one expected to
   * save more wins. NOTE: tuning the new ramp on the mixed window would be wrong: the samples from
   * before it never exit there, so its share of the disagreements would be diluted by them.
   */
  private tuneJobs(): { jobs: SearchJob[]; choose: (results: TunerResult[]) => TunerResult } {
    const jobOn = (samples: TunerSample[], ramps: TunerRamp[]): SearchJob => ({
      samples,
      ramps,
      wholeMs: this.wholeMs,
      overrides: { budget: this.tuningBudget, z: this.options.boundZ },
    });
    const partial = this.ramps.map((_, r) => this.window.some((s) => Number.isNaN(s.confidences[r]!)));
    if (!partial.includes(true)) return { jobs: [jobOn([...this.window], [...this.ramps])], choose: ([whole]) => whole! };
    const seen = (values: number[]) => values.filter((_, r) => !partial[r]);
    const jobs = [
      jobOn(
        this.window.map((s) => ({ ...s, confidences: seen(s.confidences), predictions: seen(s.predictions) })),
        this.ramps.filter((_, r) => !partial[r]),
      ),
    ];
    const known = this.knownSamples();
    if (known.length >= this.options.minSamples) jobs.push(jobOn(known, [...this.ramps]));
    const spread = (values: number[], off: number) => {
      let k = 0;
      return partial.map((p) => (p ? off : values[k++]!));
    };
    const choose = ([old, recent]: TunerResult[]): TunerResult => {
      const withOld = { ...old!, thresholds: spread(old!.thresholds, DISABLED_THRESHOLD), exitFractions: spread(old!.exitFractions, 0) };
      return recent && recent.expectedSavingMs > withOld.expectedSavingMs ? recent : withOld;
    };
    return { jobs, choose };
  }

  stats(): ExitStats {
    return {
      model: this.model,
      siteIds: this.ramps.map((r) => r.siteId),
      thresholds: this.currentThresholds,
      exitsPerRamp: [...this.exitsPerRamp],
      fullAnswers: this.fullAnswers,
      windowAgreement: this.windowAgreement(),
      numSamples: this.window.length,
      numRetunes: this.numRetunes,
      recentChanges: this.changes.map((c) => ({ ...c, before: [...c.before], after: [...c.after] })),
      suspectsDrift: this.suspectsDrift,
      effectiveExits: this.effectiveExitSamples,
    };
  }
}

function runJob(search: ThresholdSearch, job: SearchJob): TunerResult {
  return search(job.samples, job.ramps, job.wholeMs, job.overrides);
}
