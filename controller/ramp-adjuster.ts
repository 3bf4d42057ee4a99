/**
 * Latency-focused ramp adjustment for one model (pure): which ramps should be active.
 *
 * Utility of an active ramp = the expected latency saving of the cascade with it minus without it
 * (its exits' time saved against where those requests would answer otherwise, minus its cost for
 * every request that passes it), measured on the monitor's recent window with the current
 * thresholds. Each period:
 * 1. deactivate the ramp with the lowest utility if it is negative by more than the switching
 *    margin (one change per period, for stability);
 * 2. else, if the active ramps cost more than the overhead budget at the batch size in use,
 *    deactivate the lowest-utility ramp;
 * 3. else, if a ramp slot and budget are free, activate the inactive site whose prior marginal
 *    utility is best and beats the margin. Inactive ramps are not observed online, so the prior
 *    comes from the package's validation statistics (the site's exit fraction at the accuracy
 *    budget) set into the cascade the window shows: assuming an input confident at one site is
 *    confident at the later ones too, the site's new exits are the ones the ramps before it leave,
 *    and each saves only the time to where it answers today (the next active ramp that takes it,
 *    or the end). A new ramp starts disabled; the tuner enables it once it has seen it answer.
 *
 * The switching margin: a change costs every holder an in-service RAMPS build (15-45 ms measured
 * per build on fmnist-resnet), so it must gain at least `switchCostMs` over the requests it will
 * be held for at least (the cooldown). Without it, a ramp at -0.004 ms per request (noise) was
 * dropped and a ramp whose exits the next ramp already took was added by its stand-alone prior
 * (bench:adapt's class-mix), each change costing exits while the tuner re-learned.
 * Every decision is returned with its reason.
 */
import type { TunerRamp, TunerSample } from '../shared/threshold-tuner.js';

export interface CandidateSite {
  siteId: number;
  upToMs: number;
  costMs: number;
  /** From the package: exit fraction and threshold at the accuracy budget on validation data. */
  priorExitFraction: number;
  priorThreshold: number;
}

export interface AdjusterOptions {
  maxRamps: number;
  /** Σ active ramp cost ≤ overheadBudget × wholeMs. */
  overheadBudget: number;
  /**
   * A change must gain more than this (ms per request) to be made: the switching cost spread over
   * the requests the change is held for. Default 0 (ExitMonitor passes its own).
   */
  minGainMsPerRequest?: number;
}

export type RampDecision =
  | { action: 'keep'; utilitiesMs: number[] }
  | { action: 'deactivate'; siteId: number; reason: string; utilitiesMs: number[] }
  | { action: 'activate'; siteId: number; threshold: number; reason: string; utilitiesMs: number[] };

function cascadeSavingMs(
  samples: readonly TunerSample[],
  ramps: readonly TunerRamp[],
  thresholds: readonly number[],
  wholeMs: number,
  indices: readonly number[],
): number {
  let totalMs = 0;
  let totalWeight = 0;
  for (const s of samples) {
    const w = s.weight ?? 1;
    totalWeight += w;
    let paidMs = 0;
    let done = false;
    for (const r of indices) {
      paidMs += ramps[r]!.costMs;
      if (s.confidences[r]! >= thresholds[r]!) {
        totalMs += w * (ramps[r]!.upToMs + paidMs);
        done = true;
        break;
      }
    }
    if (!done) totalMs += w * (wholeMs + paidMs);
  }
  return totalWeight === 0 ? 0 : wholeMs - totalMs / totalWeight;
}

/** Marginal saving of each active ramp (ms per request), on the window. */
export function rampUtilities(samples: readonly TunerSample[], ramps: readonly TunerRamp[], thresholds: readonly number[], wholeMs: number): number[] {
  const all = ramps.map((_, i) => i);
  const withAll = cascadeSavingMs(samples, ramps, thresholds, wholeMs, all);
  return ramps.map(
    (_, r) =>
      withAll -
      cascadeSavingMs(
        samples,
        ramps,
        thresholds,
        wholeMs,
        all.filter((i) => i !== r),
      ),
  );
}

/**
 * Weighted share of the samples answered by each active ramp or an earlier one (depth order).
 * Samples that lack a ramp's confidence (taken before it was active) never exit there.
 */
export function cumulativeExitShares(samples: readonly TunerSample[], thresholds: readonly number[]): number[] {
  const exits = thresholds.map(() => 0);
  let total = 0;
  for (const s of samples) {
    const w = s.weight ?? 1;
    total += w;
    const at = s.confidences.findIndex((c, r) => c >= thresholds[r]!);
    if (at >= 0) exits[at]! += w;
  }
  let cumulative = 0;
  return exits.map((e) => (cumulative += total === 0 ? 0 : e / total));
}

/**
 * Prior utility of adding a site to the active cascade (see the file comment): its new exits are
 * the share between what the ramps before it take and its own validation exit fraction, each
 * saving the time to where it answers today; every request that reaches the site pays its head.
 */
export function marginalPriorUtilityMs(site: CandidateSite, active: readonly TunerRamp[], cumulativeShares: readonly number[], wholeMs: number): number {
  const before = active.reduce((last, r, i) => (r.upToMs <= site.upToMs ? i : last), -1);
  const takenBefore = before < 0 ? 0 : cumulativeShares[before]!;
  let savingMs = 0;
  let from = takenBefore;
  const to = Math.max(takenBefore, site.priorExitFraction);
  // the answer points after the site: each later active ramp up to its cumulative share, then the end
  for (let i = before + 1; i <= active.length && from < to; i++) {
    const upTo = i < active.length ? Math.min(cumulativeShares[i]!, to) : to;
    const answerMs = i < active.length ? active[i]!.upToMs : wholeMs;
    if (upTo > from) savingMs += (upTo - from) * (answerMs - site.upToMs);
    from = Math.max(from, upTo);
  }
  return savingMs - site.costMs * (1 - takenBefore);
}

export function adjustRamps(
  samples: readonly TunerSample[],
  active: readonly TunerRamp[],
  thresholds: readonly number[],
  candidates: readonly CandidateSite[],
  wholeMs: number,
  options: AdjusterOptions,
  /** Sites not to activate now (recently deactivated: avoids flapping). */
  excluded: ReadonlySet<number> = new Set(),
): RampDecision {
  const minGainMs = options.minGainMsPerRequest ?? 0;
  const utilitiesMs = samples.length > 0 ? rampUtilities(samples, active, thresholds, wholeMs) : active.map(() => 0);
  const worst = utilitiesMs.reduce((best, u, i) => (u < utilitiesMs[best]! ? i : best), 0);
  // 1. a ramp that costs more than it saves, by more than the switch costs
  if (active.length > 0 && samples.length > 0 && utilitiesMs[worst]! < -minGainMs) {
    return { action: 'deactivate', siteId: active[worst]!.siteId, reason: `negative utility ${utilitiesMs[worst]!.toFixed(4)} ms per request`, utilitiesMs };
  }
  // 2. the overhead budget, enforced at run time
  const overheadMs = active.reduce((s, r) => s + r.costMs, 0);
  if (active.length > 0 && overheadMs > options.overheadBudget * wholeMs) {
    return {
      action: 'deactivate',
      siteId: active[worst]!.siteId,
      reason: `ramp overhead ${overheadMs.toFixed(3)} ms exceeds ${(100 * options.overheadBudget).toFixed(1)} % of ${wholeMs.toFixed(3)} ms`,
      utilitiesMs,
    };
  }
  // 3. a free slot: the best inactive site by its prior in the cascade the window shows
  if (active.length < options.maxRamps) {
    const shares = cumulativeExitShares(samples, thresholds);
    const prior = (c: CandidateSite) => marginalPriorUtilityMs(c, active, shares, wholeMs);
    const activeIds = new Set(active.map((r) => r.siteId));
    const affordable = candidates.filter(
      (c) => !activeIds.has(c.siteId) && !excluded.has(c.siteId) && overheadMs + c.costMs <= options.overheadBudget * wholeMs && c.priorThreshold <= 1,
    );
    const best = affordable.reduce<CandidateSite | undefined>((b, c) => (!b || prior(c) > prior(b) ? c : b), undefined);
    if (best && prior(best) > minGainMs) {
      return {
        action: 'activate',
        siteId: best.siteId,
        threshold: best.priorThreshold,
        reason: `free ramp slot; prior marginal utility ${prior(best).toFixed(4)} ms per request`,
        utilitiesMs,
      };
    }
  }
  return { action: 'keep', utilitiesMs };
}
