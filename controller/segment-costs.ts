/**
 * How long each segment of an early-exit chain takes as a function of the rows it runs: one line
 * per segment, `durationNs ≈ fixedNs + perRowNs × rows`, fitted online from the stage timings
 * workers report (weighted least squares, older observations decaying), starting from the
 * package profile.
 *
 * Why a line: on CPUs a row costs about the same at any batch size, so a segment's time is a fixed
 * part (launch, copies, layout) plus a per-row part; in compact mode later segments run fewer rows
 * and the line says how much that saves. The planner uses the shape (segment against segment,
 * few rows against many), not the absolute scale: per-worker speed and host noise are the latency
 * estimator's business.
 *
 * Failure modes: all observations at one row count leave the slope undetermined, so the fit then
 * keeps the prior's split between fixed and per-row cost; a negative intercept or slope (noise)
 * is clamped at zero.
 */

export interface SegmentCostOptions {
  /** Weight kept per new observation (exponential forgetting). Default 1 − 1/256. */
  decay: number;
  /** Weight of each profile point in the prior. Default 4 (a handful of real runs outweigh it). */
  priorWeight: number;
}

export const DEFAULT_SEGMENT_COST_OPTIONS: SegmentCostOptions = { decay: 1 - 1 / 256, priorWeight: 4 };

/** Sufficient statistics of a weighted fit of d = a + b·r. */
interface LineFit {
  w: number;
  r: number;
  rr: number;
  d: number;
  rd: number;
}

const emptyFit = (): LineFit => ({ w: 0, r: 0, rr: 0, d: 0, rd: 0 });

function addPoint(fit: LineFit, rows: number, durationNs: number, weight: number): void {
  fit.w += weight;
  fit.r += weight * rows;
  fit.rr += weight * rows * rows;
  fit.d += weight * durationNs;
  fit.rd += weight * rows * durationNs;
}

function scaleFit(fit: LineFit, factor: number): void {
  fit.w *= factor;
  fit.r *= factor;
  fit.rr *= factor;
  fit.d *= factor;
  fit.rd *= factor;
}

export interface SegmentLine {
  fixedNs: number;
  perRowNs: number;
}

export class SegmentCosts {
  private readonly options: SegmentCostOptions;
  private readonly fits: LineFit[];
  private readonly priors: SegmentLine[];
  private cached: SegmentLine[] | undefined;
  private numObserved = 0;

  /**
   * `profileNs[s]` maps batch sizes to the profiled duration of segment `s` (ns), for the
   * `numSegments` segments of one ramp set (the last one ends at the model's output).
   */
  constructor(profileNs: readonly Record<number, number>[], options: Partial<SegmentCostOptions> = {}) {
    this.options = { ...DEFAULT_SEGMENT_COST_OPTIONS, ...options };
    this.fits = profileNs.map((byBatch) => {
      const fit = emptyFit();
      for (const [b, ns] of Object.entries(byBatch)) addPoint(fit, Number(b), ns, this.options.priorWeight);
      return fit;
    });
    this.priors = this.fits.map((fit) => solve(fit, { fixedNs: 0, perRowNs: fit.r > 0 ? fit.d / fit.r : 0 }));
  }

  get numSegments(): number {
    return this.fits.length;
  }

  /** Stage observations folded in so far. */
  get observations(): number {
    return this.numObserved;
  }

  /** Folds in one segment's measured run on `rows` rows. */
  observe(segment: number, rows: number, durationNs: number): void {
    const fit = this.fits[segment];
    if (!fit || !(rows > 0) || !(durationNs >= 0)) return;
    scaleFit(fit, this.options.decay);
    addPoint(fit, rows, durationNs, 1);
    this.cached = undefined;
    this.numObserved++;
  }

  lines(): SegmentLine[] {
    this.cached ??= this.fits.map((fit, s) => solve(fit, this.priors[s]!));
    return this.cached;
  }

  /** Predicted duration of segment `segment` on `rows` rows (ns); 0 rows cost nothing. */
  segmentNs(segment: number, rows: number): number {
    if (rows <= 0) return 0;
    const line = this.lines()[segment]!;
    return line.fixedNs + line.perRowNs * rows;
  }

  /** Predicted duration of the chain when every segment runs `rows` rows (ns). */
  uniformChainNs(rows: number): number {
    let total = 0;
    for (let s = 0; s < this.fits.length; s++) total += this.segmentNs(s, rows);
    return total;
  }

  /** Predicted duration of the chain when segment s runs `rows[s]` rows (ns). */
  chainNs(rows: readonly number[]): number {
    let total = 0;
    for (let s = 0; s < this.fits.length; s++) total += this.segmentNs(s, rows[s] ?? 0);
    return total;
  }
}

/** Least-squares line; with no spread in rows, the prior's split of fixed against per-row cost. */
function solve(fit: LineFit, prior: SegmentLine): SegmentLine {
  if (fit.w <= 0) return prior;
  const meanRows = fit.r / fit.w;
  const meanNs = fit.d / fit.w;
  const varRows = fit.rr / fit.w - meanRows * meanRows;
  if (varRows < 1e-6 * Math.max(1, meanRows * meanRows)) {
    // One row count only: keep the prior's intercept share, rescaled to the observed mean.
    const priorAtMean = prior.fixedNs + prior.perRowNs * meanRows;
    const scale = priorAtMean > 0 ? meanNs / priorAtMean : 1;
    return { fixedNs: prior.fixedNs * scale, perRowNs: priorAtMean > 0 ? prior.perRowNs * scale : meanNs / Math.max(1, meanRows) };
  }
  const slope = (fit.rd / fit.w - meanRows * meanNs) / varRows;
  const perRowNs = Math.max(0, slope);
  const fixedNs = Math.max(0, meanNs - perRowNs * meanRows);
  return { fixedNs, perRowNs };
}
