/**
 * How many rows of a batch are still running at each segment of an early-exit model: learned from
 * what served batches did, and read at a stated quantile so that the planner can count on exits.
 *
 * Model: a request that reaches active ramp i unanswered is answered there with probability q_i,
 * independently of the other rows; compact mode keeps a share `m` of answered rows running to the
 * end (accuracy monitoring). A row is then still in the batch at segment j with probability
 * π_j = A_j + m (1 − A_j), where A_j = Π_{i<j} (1 − q_i), and the rows alive at segment j of an
 * n-row batch are Binomial(n, π_j).
 *
 * Evidence: per ramp, how many unanswered rows reached it and how many were answered there, over
 * the last `maxRows` request rows and `maxAgeNs` (older batches are dropped: rates move with the
 * inputs). Survival at each ramp is read at its one-sided Wilson upper bound (z = `z`), and the
 * rows alive at its binomial quantile (`quantile`): both err towards more rows, i.e. a longer
 * batch. Below `minRows` of evidence the estimate is "nobody leaves" (the no-exit bound).
 *
 * Failure modes: a change of thresholds or ramps changes the rates, so the evidence restarts
 * (seeded from the exit monitor's estimate for the new thresholds, when given); an exit-rate
 * collapse (drift, a ramp switched off) shows as a batch with more unanswered rows than the
 * `collapseQuantile` of the prediction, and the evidence then restarts from that batch alone,
 * which puts the planner back at (or near) the no-exit bound at once.
 */

export interface ExitEvidenceOptions {
  /** Request rows kept. Default 1,024: ~64 full batches; a 1 % rate is seen ~10 times. */
  maxRows: number;
  /** Batches older than this are dropped (ns). Default 20 s. */
  maxAgeNs: number;
  /** Below this many rows at the first ramp, nobody is assumed to leave. Default 64. */
  minRows: number;
  /** Quantile of the rows alive that planning reads (the bound). Default 0.95. */
  quantile: number;
  /** z of the one-sided upper bound on each ramp's survival. Default 1.645 (95 %). */
  z: number;
  /** A batch with more unanswered rows than this quantile of the prediction restarts the evidence. Default 0.999. */
  collapseQuantile: number;
  /** Most pseudo-rows a seed (the monitor's estimate for new thresholds) stands for. Default 128. */
  maxSeedRows: number;
}

export const DEFAULT_EXIT_EVIDENCE_OPTIONS: ExitEvidenceOptions = {
  maxRows: 1024,
  maxAgeNs: 20e9,
  minRows: 64,
  quantile: 0.95,
  z: 1.645,
  collapseQuantile: 0.999,
  maxSeedRows: 128,
};

/** What one batch showed: per active ramp, unanswered rows that reached it and rows answered there. */
export interface BatchExits {
  reached: number[];
  answered: number[];
}

interface Entry extends BatchExits {
  atNs: number;
  numRows: number;
}

/** Rows alive at each segment of an n-row batch (segment 0 runs every request row). */
export interface SurvivorEstimate {
  /** At the planning quantile: what deadline checks rely on. */
  bound: number[];
  /** Expected value (point estimate): what the worker's timeline is predicted with. */
  expected: number[];
  /** False below `minRows` of evidence: the bound is then "nobody leaves". */
  informed: boolean;
}

/** One-sided Wilson upper bound of a proportion (1 with no trials). */
export function wilsonUpper(successes: number, trials: number, z: number): number {
  if (trials <= 0) return 1;
  const p = Math.min(1, Math.max(0, successes / trials));
  const z2 = z * z;
  const centre = p + z2 / (2 * trials);
  const spread = z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials));
  return Math.min(1, (centre + spread) / (1 + z2 / trials));
}

/** Smallest k with P(Binomial(n, p) ≤ k) ≥ quantile. */
export function binomialQuantile(n: number, p: number, quantile: number): number {
  if (n <= 0 || p <= 0) return 0;
  if (p >= 1) return n;
  // NOTE: n is a batch size (tens of rows), so the exact sum is cheap; pmf by recurrence.
  let pmf = Math.pow(1 - p, n);
  let cdf = pmf;
  for (let k = 0; k < n; k++) {
    if (cdf >= quantile) return k;
    pmf *= ((n - k) / (k + 1)) * (p / (1 - p));
    cdf += pmf;
  }
  return n;
}

export class ExitEvidence {
  private readonly options: ExitEvidenceOptions;
  private entries: Entry[] = [];
  private reached: number[];
  private answered: number[];
  private numRows = 0;
  /** Pseudo-counts from a seed (kept until real rows outweigh them; never aged). */
  private seedReached: number[];
  private seedAnswered: number[];
  private numCollapses = 0;

  constructor(
    private readonly numRamps: number,
    options: Partial<ExitEvidenceOptions> = {},
  ) {
    this.options = { ...DEFAULT_EXIT_EVIDENCE_OPTIONS, ...options };
    this.reached = new Array<number>(numRamps).fill(0);
    this.answered = new Array<number>(numRamps).fill(0);
    this.seedReached = new Array<number>(numRamps).fill(0);
    this.seedAnswered = new Array<number>(numRamps).fill(0);
  }

  /** Times the evidence restarted because a batch showed far fewer exits than predicted. */
  get collapses(): number {
    return this.numCollapses;
  }

  /** Request rows of evidence (real and seeded) at the first ramp. */
  get evidenceRows(): number {
    return (this.reached[0] ?? 0) + (this.seedReached[0] ?? 0);
  }

  /** True once there is enough evidence to predict survivors (before that, nobody is assumed to exit). */
  get informed(): boolean {
    return this.evidenceRows >= this.options.minRows;
  }

  /**
   * Restarts the evidence (new thresholds or ramps), optionally seeded with an estimate of the
   * share of requests answered at each ramp (unconditional, as the exit monitor reports it) that
   * stands for `basisRows` rows (capped at `maxSeedRows`).
   */
  reset(seedShares?: readonly number[], basisRows = 0): void {
    this.entries = [];
    this.numRows = 0;
    this.reached.fill(0);
    this.answered.fill(0);
    this.seedReached.fill(0);
    this.seedAnswered.fill(0);
    const rows = Math.min(this.options.maxSeedRows, basisRows);
    if (!seedShares || seedShares.length !== this.numRamps || rows <= 0) return;
    let unanswered = rows;
    seedShares.forEach((share, i) => {
      const answered = Math.min(unanswered, Math.max(0, share) * rows);
      this.seedReached[i] = unanswered;
      this.seedAnswered[i] = answered;
      unanswered -= answered;
    });
  }

  /** Folds in one batch; a batch far outside the prediction restarts the evidence from it. */
  observe(batch: BatchExits, nowNs: number): void {
    const numRows = batch.reached[0] ?? 0;
    if (numRows <= 0 || batch.reached.length !== this.numRamps) return;
    if (this.isCollapse(batch, numRows)) {
      this.numCollapses++;
      this.reset();
    }
    const entry: Entry = { reached: [...batch.reached], answered: [...batch.answered], atNs: nowNs, numRows };
    this.entries.push(entry);
    this.add(entry, 1);
    // Age out: keep at most maxRows rows, none older than maxAgeNs (but always this batch).
    while (
      this.entries.length > 1 &&
      (this.numRows - this.entries[0]!.numRows >= this.options.maxRows || nowNs - this.entries[0]!.atNs > this.options.maxAgeNs)
    ) {
      this.add(this.entries.shift()!, -1);
    }
  }

  private add(entry: Entry, sign: 1 | -1): void {
    this.numRows += sign * entry.numRows;
    for (let i = 0; i < this.numRamps; i++) {
      this.reached[i]! += sign * entry.reached[i]!;
      this.answered[i]! += sign * entry.answered[i]!;
    }
  }

  /** Point estimate of each ramp's answer probability (q_i), from real and seeded rows. */
  answerRates(): number[] {
    return this.reached.map((r, i) => {
      const trials = r + this.seedReached[i]!;
      return trials > 0 ? (this.answered[i]! + this.seedAnswered[i]!) / trials : 0;
    });
  }

  /** True when a batch left far more rows unanswered than the evidence predicts. */
  private isCollapse(batch: BatchExits, numRows: number): boolean {
    if (this.evidenceRows < this.options.minRows) return false;
    const q = this.answerRates();
    const unansweredShare = q.reduce((s, qi) => s * (1 - qi), 1);
    const unanswered = numRows - batch.answered.reduce((a, b) => a + b, 0);
    return unanswered > binomialQuantile(numRows, unansweredShare, this.options.collapseQuantile);
  }

  /**
   * Rows alive at each of the `numRamps + 1` segments of a batch of `numRequests` request rows,
   * when a share `keepShare` of answered rows runs on (compact mode's monitoring sample).
   */
  survivors(numRequests: number, keepShare: number): SurvivorEstimate {
    const numSegments = this.numRamps + 1;
    const everyone = new Array<number>(numSegments).fill(numRequests);
    if (this.evidenceRows < this.options.minRows || numRequests <= 0) return { bound: everyone, expected: [...everyone], informed: false };
    const { z, quantile } = this.options;
    const bound = [numRequests];
    const expected = [numRequests];
    let unansweredUpper = 1;
    let unansweredPoint = 1;
    for (let i = 0; i < this.numRamps; i++) {
      const trials = this.reached[i]! + this.seedReached[i]!;
      const stayed = trials - (this.answered[i]! + this.seedAnswered[i]!);
      unansweredUpper *= wilsonUpper(stayed, trials, z);
      unansweredPoint *= trials > 0 ? stayed / trials : 1;
      const aliveUpper = unansweredUpper + keepShare * (1 - unansweredUpper);
      const alivePoint = unansweredPoint + keepShare * (1 - unansweredPoint);
      bound.push(binomialQuantile(numRequests, aliveUpper, quantile));
      expected.push(numRequests * alivePoint);
    }
    return { bound, expected, informed: true };
  }
}
