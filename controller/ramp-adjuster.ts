/**
 * Latency-focused ramp adjustment for one model (pure): which ramps should be active.
 *
 * Utility of an active ramp = the expected latency saving of the cascade with it minus without it
 * (its exits' time saved against where those requests would answer otherwise, minus its cost for
 * every request that passes it), measured on the monitor's recent window with the current
 * thresholds. Each period:
 * 1. deactivate the ramp with the lowest utility if it is negative (one change per period, for
 *    stability);
 * 2. else, if the active ramps cost more than the overhead budget at the batch size in use,
 *    deactivate the lowest-utility ramp;
 * 3. else, if a ramp slot and budget are free, activate the inactive site whose prior utility is
 *    best. The prior comes from the package's validation statistics (its exit fraction at the
 *    accuracy budget), since inactive ramps are not observed online. A new ramp starts at its
 *    validation threshold; the tuner adjusts it once the window has data for it. (The exit
 *    monitor starts it disabled instead in compact mode: see ExitMonitor.maybeAdjust.)
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

/** Prior utility of activating a site alone, from its validation statistics. */
export function priorUtilityMs(site: CandidateSite, wholeMs: number): number {
  return site.priorExitFraction * (wholeMs - site.upToMs) - site.costMs;
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
  const utilitiesMs = samples.length > 0 ? rampUtilities(samples, active, thresholds, wholeMs) : active.map(() => 0);
  const worst = utilitiesMs.reduce((best, u, i) => (u < utilitiesMs[best]! ? i : best), 0);
  // 1. a ramp that costs more than it saves
  if (active.length > 0 && samples.length > 0 && utilitiesMs[worst]! < 0) {
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
  // 3. a free slot: the best inactive site by its prior
  if (active.length < options.maxRamps) {
    const activeIds = new Set(active.map((r) => r.siteId));
    const affordable = candidates.filter(
      (c) => !activeIds.has(c.siteId) && !excluded.has(c.siteId) && overheadMs + c.costMs <= options.overheadBudget * wholeMs && c.priorThreshold <= 1,
    );
    const best = affordable.reduce<CandidateSite | undefined>((b, c) => (!b || priorUtilityMs(c, wholeMs) > priorUtilityMs(b, wholeMs) ? c : b), undefined);
    if (best && priorUtilityMs(best, wholeMs) > 0) {
      return {
        action: 'activate',
        siteId: best.siteId,
        threshold: best.priorThreshold,
        reason: `free ramp slot; prior utility ${priorUtilityMs(best, wholeMs).toFixed(4)} ms per request`,
        utilitiesMs,
      };
    }
  }
  return { action: 'keep', utilitiesMs };
}
