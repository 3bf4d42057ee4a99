/**
 * The exit monitor's two drift signals (pure). `ExitShareWatch`: every served row, labelled or
 * not, shows whether it exited, and the monitor's window predicts what share should exit under the
 * thresholds served; the watch says when the recent share leaves that prediction (the inputs no
 * longer look like the window's). `recentDisagreementLowerBound`: the labelled answers of the most
 * recent samples break the budget beyond reasonable doubt. See exit-monitor.ts for what follows.
 */
import { wilsonLowerBoundOfRate, type TunerSample } from '../shared/threshold-tuner.js';

/** A window sample with the ramp that answered it under the thresholds in force (-1: the full model). */
export type AnsweredSample = TunerSample & { answeredBy: number };

export class ExitShareWatch {
  private key = '';
  private recent = 0;
  private rows = 0;
  /** Σ (each row's weight in `recent`)²: the recent share's variance is p(1 - p) times this (1/n for a plain mean). */
  private spread = 0;
  private predicted = Number.NaN;
  /** The prediction's own variance factor (see `exitShareUnder`). */
  private predictedSpread = 0;
  private predictedAtRow = 0;

  constructor(
    /** Rows the recent share follows (an EWMA span). */
    private readonly spanRows: number,
    /** Standard errors between the recent and the predicted share that make a drift suspected. */
    private readonly z: number,
  ) {}

  /**
   * Folds in one row served under the thresholds `key` names (a new set starts over). Returns true
   * when, `armed`, the recent share is more than `z` standard errors from `predict()` (the window's
   * share under those thresholds, re-read every `spanRows` rows as the window moves). The standard
   * error counts both estimates: the recent share's and the prediction's, which a window of weighted
   * samples (compact mode labels a tenth of its exits) makes as uncertain as the recent rows'.
   * NOTE: counting the recent share's alone made a stationary stream look drifted now and then
   * (exit-monitor.test.ts: 0.30 served against 0.20 predicted where 0.23 was true).
   */
  observe(exited: boolean, key: string, predict: () => ExitSharePrediction, armed: boolean): boolean {
    if (key !== this.key) Object.assign(this, { key, recent: 0, rows: 0, spread: 0, predicted: Number.NaN });
    this.rows++;
    // A plain mean until the span is full, so that it does not start biased towards its first rows.
    const a = 1 / Math.min(this.rows, this.spanRows);
    this.recent += ((exited ? 1 : 0) - this.recent) * a;
    this.spread = (1 - a) ** 2 * this.spread + a * a;
    if (!armed || this.rows < this.spanRows) return false;
    if (Number.isNaN(this.predicted) || this.rows - this.predictedAtRow >= this.spanRows) {
      const prediction = predict();
      this.predicted = prediction.share;
      this.predictedSpread = prediction.spread;
      this.predictedAtRow = this.rows;
    }
    const p = Math.min(Math.max(this.predicted, 0.02), 0.98);
    return Math.abs(this.recent - this.predicted) > this.z * Math.sqrt(p * (1 - p) * (this.spread + this.predictedSpread));
  }
}

export interface ExitSharePrediction {
  /** Weighted share of the requests that would exit. */
  share: number;
  /** Σw² / (Σw)²: the share's variance is p(1 - p) times this (1/n for n samples of weight 1). */
  spread: number;
}

/** Weighted share of the samples' requests that would exit under `thresholds`, and how certain it is. */
export function exitShareUnder(samples: readonly TunerSample[], thresholds: readonly number[]): ExitSharePrediction {
  let total = 0;
  let totalSq = 0;
  let exited = 0;
  for (const s of samples) {
    const w = s.weight ?? 1;
    total += w;
    totalSq += w * w;
    if (s.confidences.some((c, i) => c >= thresholds[i]!)) exited += w;
  }
  return total === 0 ? { share: 0, spread: 0 } : { share: exited / total, spread: totalSq / (total * total) };
}

/**
 * Lower confidence bound (one-sided, `z`) on the disagreement of the answers the last `segment`
 * samples got; 0 with fewer samples. Disagreements happen only among exits: their rate is bounded
 * with Kish's effective sample size (a monitored compact exit stands for several requests but is
 * one observation) and scaled by the exit share.
 */
export function recentDisagreementLowerBound(samples: readonly AnsweredSample[], segment: number, z: number): number {
  if (samples.length < segment) return 0;
  let total = 0;
  let exited = 0;
  let exitedSq = 0;
  let disagree = 0;
  for (let i = samples.length - segment; i < samples.length; i++) {
    const s = samples[i]!;
    const w = s.weight ?? 1;
    total += w;
    if (s.answeredBy < 0) continue;
    exited += w;
    exitedSq += w * w;
    if (s.predictions[s.answeredBy] !== s.finalPrediction) disagree += w;
  }
  if (exited <= 0) return 0;
  return wilsonLowerBoundOfRate(disagree / exited, (exited * exited) / exitedSq, z) * (exited / total);
}
