/**
 * When a newly arrived request would finish if the planner drains its model's queue as it will:
 * the requests ahead of it (deadline order) leave in full batches, each batch to the worker that
 * frees up first, and the request runs in the batch after them. Admission admits a request only
 * when that completion is in time, so that what is admitted can be planned in time.
 *
 * The request's own batch holds the requests ahead of it that did not fill a batch, itself, and
 * whatever arrives behind it before that batch is planned (at the model's recent arrival rate):
 * under load the batch fills up, and a request admitted on the promise of a small batch would
 * otherwise force the planner to shrink batches to keep the promise (on hardware where batching
 * pays, a cascade of small batches) or to break it.
 */

/** One worker as the drain sees it. */
export interface DrainLane {
  /** When it can start the first batch (it frees up, plus a LOAD if it lacks the model). */
  startNs: number;
  /** Typical duration of a full batch on it. */
  fullNs: number;
  /** The bound on a batch of `rows` rows on it (what deadline checks rely on). */
  ownNs: (rows: number) => number;
}

export interface DrainQuery {
  lanes: readonly DrainLane[];
  /** Full batches of requests ahead of the new one. */
  numFullAhead: number;
  /** Rows of its own batch known now: the requests ahead that did not fill a batch, and itself. */
  ownRows: number;
  /** The largest batch. */
  maxRows: number;
  /** Recent arrivals of the model per ns (requests behind it that will join its batch). */
  arrivalsPerNs: number;
  /** The own batch is planned this long before it starts (the planner's schedule-ahead). */
  planAheadNs: number;
  nowNs: number;
  /**
   * The completion the request needs (its deadline, less the planner's buffer when requests are
   * ahead of it). Below a full batch the planner runs the largest batch that ends by its head's
   * deadline (batch-choice.ts), so a batch that arrivals would fill past it is cut to the largest
   * that ends in time (never below `ownRows`). With a full batch waiting (overload) the planner runs
   * full batches of the requests that can make them, and the prediction stays the full batch's.
   * NOTE: on a host where a full batch outlasts the SLO (a batch of 16 in 43 ms against 40 ms),
   * admission without the cut predicted requests into batches the planner would not run and
   * rejected them. Cutting in overload too admitted more of gamma bursts and missed twice as many
   * of them after admission (bench:bursty, 6 seeds: 6.8 % against 3.5 %), for no more answered.
   */
  latestFinishNs?: number;
}

/** The own batch's rows if it starts at `startNs`. */
function rowsAt(q: DrainQuery, startNs: number): number {
  const waitNs = Math.max(0, startNs - q.planAheadNs - q.nowNs);
  return Math.min(q.maxRows, Math.max(q.ownRows, Math.ceil(q.ownRows + q.arrivalsPerNs * waitNs)));
}

/** When the own batch ends if it starts on `lane` at `startNs`: filled by arrivals, cut as `latestFinishNs` says. */
function ownFinishNs(q: DrainQuery, lane: DrainLane, startNs: number): number {
  const rows = rowsAt(q, startNs);
  // A full batch waiting is overload: the planner then runs full batches of the requests that can
  // make them (batch-choice.ts), and the prediction stays the full batch's.
  if (q.latestFinishNs === undefined || rows >= q.maxRows) return startNs + lane.ownNs(rows);
  return startNs + lane.ownNs(largestFitting(lane, q.ownRows, rows, q.latestFinishNs - startNs));
}

/** The most rows in [from, to] whose bound on `lane` is within `budgetNs` (durations grow with rows); `from` if none. */
function largestFitting(lane: DrainLane, from: number, to: number, budgetNs: number): number {
  if (lane.ownNs(to) <= budgetNs) return to;
  let fits = from;
  let tooMany = to;
  while (tooMany - fits > 1) {
    const mid = (fits + tooMany) >> 1;
    if (lane.ownNs(mid) <= budgetNs) fits = mid;
    else tooMany = mid;
  }
  return fits;
}

/** Predicted completion of the new request (Infinity with no lane). */
export function drainCompletionNs(q: DrainQuery): number {
  const { lanes, numFullAhead } = q;
  if (lanes.length === 0) return Number.POSITIVE_INFINITY;
  if (numFullAhead <= 0) return Math.min(...lanes.map((l) => ownFinishNs(q, l, l.startNs)));
  // Lane w offers slots at startNs + k·fullNs (k = 0, 1, ...); the own batch takes the
  // (numFullAhead + 1)-th earliest. Found by bisection on time (the number of slots starting by t
  // is a step function), so the cost does not grow with the queue.
  const slotsBy = (t: number): number => lanes.reduce((n, l) => n + (t >= l.startNs ? Math.floor((t - l.startNs) / Math.max(1, l.fullNs)) + 1 : 0), 0);
  let lo = Math.min(...lanes.map((l) => l.startNs));
  let hi = Math.max(...lanes.map((l) => l.startNs + numFullAhead * l.fullNs));
  for (let i = 0; i < 60 && hi - lo > 1_000; i++) {
    const mid = (lo + hi) / 2;
    if (slotsBy(mid) >= numFullAhead + 1) hi = mid;
    else lo = mid;
  }
  // The lane whose slot starts at (about) hi runs the own batch: the latest slot start at or
  // before hi, over the lanes. NOTE: slot indices get a small epsilon, since (hi - start) / full
  // can land a hair below an integer in floating point when times are ~1e13 ns.
  let slotNs = Number.NEGATIVE_INFINITY;
  let lane: DrainLane | undefined;
  for (const l of lanes) {
    if (hi + 1_000 < l.startNs) continue;
    const k = Math.max(0, Math.floor((hi - l.startNs) / Math.max(1, l.fullNs) + 1e-6));
    const startNs = l.startNs + k * l.fullNs;
    if (startNs > slotNs) {
      slotNs = startNs;
      lane = l;
    }
  }
  const best = lane ? ownFinishNs(q, lane, slotNs) : Number.POSITIVE_INFINITY;
  return best;
}
