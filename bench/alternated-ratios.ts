/**
 * Throughput ratios read within rounds of alternated measurements. Each round measures every
 * variant once, seconds apart, so a ratio taken within a round sees the host at one speed.
 * Across rounds (or across measurements minutes apart) the speed drifts. On the development VM,
 * one session measured the same saturating run at 604 and at 700 req/s. The ratio reported is
 * the median of the per-round ratios.
 */

/** One round: each variant's measured requests per second. */
export type Round = Record<string, number>;

export interface AlternatedRatio {
  /** This variant's throughput over the baseline's, per round. */
  perRound: number[];
  /** The median of `perRound` (the mean of the middle two for an even count). */
  median: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Per variant other than `baseline`, its ratio to the baseline within each round, and their median. */
export function alternatedRatios(rounds: readonly Round[], baseline: string): Record<string, AlternatedRatio> {
  if (rounds.length === 0) throw new Error('alternated ratios need at least one round');
  const variants = Object.keys(rounds[0]!).filter((v) => v !== baseline);
  return Object.fromEntries(
    variants.map((variant) => {
      const perRound = rounds.map((round) => round[variant]! / round[baseline]!);
      return [variant, { perRound, median: median(perRound) }];
    }),
  );
}
