/**
 * What early exits allow at best: compute-bound throughput ceilings of the exit modes relative to
 * the whole model at one batch size. Release runs every row through the whole chain; compact stops
 * a row at the site that answered it, except the monitored fraction, which runs to the end.
 * Per-action overheads (exit messages, thread hops) and contention are left out, so a measured
 * ratio below the ceiling is the serving path's cost, and a ceiling below a goal is the ramps'.
 */
export interface CeilingInputs {
  /** Whole model and the chain (ramps attached, nothing exiting), ms per batch. */
  wholeMs: number;
  chainMs: number;
  /** Backbone time from the input to each site in the whole model, ms per batch, by site id. */
  siteUpToMs: Record<string, number>;
  /** Fraction of requests answered at each site, by site id. */
  exitFractions: Record<string, number>;
  /** Compact mode: the fraction of exited requests that still run to the end. */
  monitorFraction: number;
}

export interface Ceilings {
  release: number;
  compact: number;
}

export function exitCeilings(input: CeilingInputs): Ceilings {
  const chainScale = input.chainMs / input.wholeMs; // the chain's own cost, spread evenly over its depth
  let costMs = 0;
  let exited = 0;
  for (const [site, fraction] of Object.entries(input.exitFractions)) {
    const upToMs = input.siteUpToMs[site];
    if (upToMs === undefined) throw new Error(`no profile for site ${site}`);
    costMs += fraction * ((1 - input.monitorFraction) * upToMs * chainScale + input.monitorFraction * input.chainMs);
    exited += fraction;
  }
  costMs += Math.max(0, 1 - exited) * input.chainMs;
  return { release: input.wholeMs / input.chainMs, compact: input.wholeMs / costMs };
}
