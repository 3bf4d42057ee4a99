/**
 * What the planner predicts about batches, read from the latency estimator and the exit-aware
 * timeline: the batch sizes a model may form, how long a batch takes on a worker (its bound and
 * its typical duration), a model's batch-1 time and backlog, and when a newly arrived request
 * would finish if the queue drains as planned. Read-only over the cluster state; admission,
 * dispatch and placement all ask here, so each rule is written once.
 */
import { rampSetKey, type ModelState, type WorkerState } from './cluster-state.js';
import type { BatchTiming } from './batch-choice.js';
import type { LatencyEstimator } from './latency-estimator.js';
import { profileKey } from './profile-key.js';
import { drainCompletionNs, type DrainLane } from './queue-drain.js';
import type { SchedulerConfig } from './scheduler-config.js';
import { chainWarmupBatchSizes } from '../shared/chain-warmup.js';
import type { RampsWarmup } from '../shared/protocol.js';

/**
 * Building one chain or fused model, besides its warm-up runs: graph surgery and session creation
 * (a fused fmnist-resnet build took 786-848 ms where its runs come to ~780 ms).
 */
const RAMPS_SETUP_NS = 100_000_000;

/** The site ids of a ramp list, once per list (exit configs are replaced whole, never changed in place). */
const SITE_IDS = new WeakMap<readonly { siteId: number }[], readonly number[]>();
function siteIdsOf(ramps: readonly { siteId: number }[]): readonly number[] {
  let ids = SITE_IDS.get(ramps);
  if (!ids) SITE_IDS.set(ramps, (ids = ramps.map((r) => r.siteId)));
  return ids;
}

export class BatchEstimates {
  constructor(
    private readonly workers: ReadonlyMap<string, WorkerState>,
    private readonly estimator: LatencyEstimator,
    /** The scheduler's config (changed in place by setPolicy). */
    private readonly config: SchedulerConfig,
  ) {}

  /** The batch sizes the planner may form for a model: those up to maxBatchSize, at least the smallest. */
  usableBatchSizes(model: ModelState): number[] {
    const usable = model.spec.batchSizes.filter((b) => b <= this.config.maxBatchSize);
    return usable.length > 0 ? usable : [model.spec.batchSizes[0]!];
  }

  largestBatch(model: ModelState): number {
    return this.usableBatchSizes(model).at(-1)!;
  }

  /**
   * True when this worker can run the model's current ramp set: its chain is built and, in
   * release mode, the fused model too.
   */
  rampsReady(worker: WorkerState, model: ModelState): boolean {
    const exits = model.spec.earlyExit;
    if (!exits || exits.ramps.length === 0) return false;
    const key = rampSetKey(siteIdsOf(exits.ramps), this.needsFused(model));
    return worker.instances.get(model.spec.name)?.readyRampSets.has(key) ?? false;
  }

  /** True when the model's workers must hold the fused model as well as the chain (release mode). */
  needsFused(model: ModelState): boolean {
    return this.config.fusedRelease && model.spec.earlyExit?.mode === 'release';
  }

  /**
   * Release mode runs a batch on the fused model (whole model plus heads: nobody answered early,
   * about the whole model's cost) instead of the chain (early answers, but the chain costs more)
   * unless the chain's early answers gain more request time than its extra time costs the rows
   * that run to the end and the requests served after the batch (ExitTimeline.releaseChainGain):
   * the rest of the queue, and this worker's share of what arrives while the batch runs. Under
   * sustained load the queue alone decides it, so release costs no throughput. (Off the chain, the
   * scheduler runs most such batches on the plain whole model; see planInfer.)
   */
  runsFused(worker: WorkerState, model: ModelState, numRequests: number, batchSize: number, nowNs: number): boolean {
    const exits = model.spec.earlyExit;
    const timeline = model.spec.exitTimeline;
    if (!this.config.fusedRelease || exits?.mode !== 'release' || !timeline || !this.rampsReady(worker, model)) return false;
    const siteIds = siteIdsOf(exits.ramps);
    const wholeNs =
      this.estimator.expectedNs(model.spec.name, worker.id, profileKey(batchSize, model.queue.peek()?.seqLength ?? 0)) ??
      model.spec.nominalBatch1Ns * batchSize;
    const runNs = wholeNs * timeline.releaseChainFactor(siteIds, batchSize);
    const arriving = (model.arrivals.perNs(nowNs) * runNs) / Math.max(1, model.holders.size);
    const waitingBehind = Math.max(0, model.queue.length - numRequests) + arriving;
    return timeline.releaseChainGain(siteIds, numRequests, batchSize, waitingBehind) <= 0;
  }

  /**
   * A RAMPS action's duration before one has been measured on this worker: the configured default,
   * or, for a full warm-up, what its runs cost at this worker's own whole-model estimates if that
   * is more (the chain at every batch size up to the largest, twice, at the chain's cost, unless
   * the worker has it already; release's fused model as well). NOTE: the flat 300 ms default held on the development VM; on a host
   * running fmnist-resnet 2.5x slower a fused build took 830 ms on both workers at once, the
   * planner planned INFERs after 300 ms, and a third of a 400 req/s start was refused or late.
   */
  rampsPriorNs(worker: WorkerState, model: ModelState, warmup: RampsWarmup, fused: boolean): number {
    if (warmup === 'smoke') return this.config.defaultSmokeRampsNs;
    const exits = model.spec.earlyExit;
    const timeline = model.spec.exitTimeline;
    const largest = model.spec.batchSizes.at(-1)!;
    if (!exits || !timeline) return this.config.defaultRampsNs;
    const siteIds = siteIdsOf(exits.ramps);
    // The package's own chain is built with the LOAD: a release RAMPS for it builds the fused model only.
    const chainBuilt = worker.instances.get(model.spec.name)?.readyRampSets.has(rampSetKey(siteIds)) ?? false;
    const factor = (chainBuilt ? 0 : timeline.noExitFactor(siteIds, largest)) + (fused ? timeline.fusedFactor(siteIds, largest) : 0);
    const numBuilt = (chainBuilt ? 0 : 1) + (fused ? 1 : 0);
    const runsNs = chainWarmupBatchSizes('full', largest).reduce((sum, b) => sum + this.wholeAtNs(worker, model, b), 0);
    return Math.max(this.config.defaultRampsNs, runsNs * factor + numBuilt * RAMPS_SETUP_NS);
  }

  /** The worker's typical whole-model run at any row count, interpolated between its estimated batch sizes. */
  private wholeAtNs(worker: WorkerState, model: ModelState, rows: number): number {
    const known = (b: number) => this.estimator.expectedNs(model.spec.name, worker.id, profileKey(b));
    const sizes = model.spec.batchSizes;
    const upper = sizes.find((b) => b >= rows);
    const lower = [...sizes].reverse().find((b) => b <= rows);
    const hiNs = upper === undefined ? undefined : known(upper);
    const loNs = lower === undefined ? undefined : known(lower);
    if (hiNs !== undefined && loNs !== undefined && upper !== lower) return loNs + ((hiNs - loNs) * (rows - lower!)) / (upper! - lower!);
    const near = loNs ?? hiNs;
    const nearSize = loNs !== undefined ? lower! : upper;
    return near !== undefined && nearSize ? (near * rows) / nearSize : model.spec.nominalBatch1Ns * rows;
  }

  /**
   * Where a model's next request could run: its holders, or every worker when it has none.
   * NOTE: with a copy in place, a fresh LOAD elsewhere (~1 s) is never the earliest option, so
   * predictions only look at holders; this keeps arrivals and plans O(copies), not O(workers).
   */
  candidateWorkers(model: ModelState): Iterable<WorkerState> {
    return model.holders.size > 0 ? model.holders.values() : this.workers.values();
  }

  batch1EstimateNs(model: ModelState, seqLength = model.queue.peek()?.seqLength ?? 0): number {
    let best = Number.POSITIVE_INFINITY;
    for (const worker of this.candidateWorkers(model)) {
      const est = this.estimator.estimateNs(model.spec.name, worker.id, profileKey(model.spec.batchSizes[0]!, seqLength));
      if (est !== undefined) best = Math.min(best, est);
    }
    return Number.isFinite(best) ? best : model.spec.nominalBatch1Ns;
  }

  /** Executor time one worker needs to drain the model's queue: full batches plus a padded rest. */
  backlogNs(model: ModelState): number {
    const sizes = this.usableBatchSizes(model);
    const largest = sizes.at(-1)!;
    const bestEstimateNs = (batchSize: number): number => {
      let best = Number.POSITIVE_INFINITY;
      for (const worker of model.holders.values()) {
        const est = this.estimator.estimateNs(model.spec.name, worker.id, profileKey(batchSize, model.spec.sequenceBuckets?.at(-1)));
        if (est !== undefined) best = Math.min(best, est);
      }
      return Number.isFinite(best) ? best : model.spec.nominalBatch1Ns * batchSize;
    };
    const numFull = Math.floor(model.queue.length / largest);
    const rest = model.queue.length % largest;
    return numFull * bestEstimateNs(largest) + (rest > 0 ? bestEstimateNs(sizes.find((b) => b >= rest)!) : 0);
  }

  /**
   * Predicted earliest completion of a request with `numAhead` more urgent requests of the same
   * model queued, by draining the queue as the planner will: the requests ahead leave in full
   * batches of the largest size, each to the worker that frees up first (at their typical,
   * exit-aware durations), and the request's own batch holds the rest of them and itself (at
   * its bound), and what arrives behind it, as long as the batch still ends by `latestFinishNs`
   * (queue-drain.ts). A worker without the model pays a LOAD first.
   */
  earliestCompletionNs(model: ModelState, nowNs: number, numAhead: number, seqLength = 0, latestFinishNs?: number): number {
    const name = model.spec.name;
    const sizes = this.usableBatchSizes(model);
    const largest = sizes.at(-1)!;
    const numFullAhead = Math.floor(numAhead / largest);
    const lanes: DrainLane[] = [];
    for (const worker of this.candidateWorkers(model)) {
      if (worker.failedModels.has(name)) continue;
      const fallbackNs = this.batch1EstimateNs(model, seqLength);
      const full = numFullAhead > 0 ? this.batchTiming(worker, model, largest, largest, seqLength, nowNs) : undefined;
      let startNs = worker.timeline.freeAtNs(nowNs);
      if (!worker.instances.has(name)) startNs += this.estimator.estimateNs(name, worker.id, 0) ?? this.config.defaultLoadNs;
      const ownNs = (rows: number): number =>
        this.batchTiming(worker, model, rows, sizes.find((b) => b >= rows) ?? largest, seqLength, nowNs)?.boundNs ?? fallbackNs * rows;
      lanes.push({ startNs, fullNs: full?.expectedNs ?? fallbackNs * largest, ownNs });
    }
    return drainCompletionNs({
      lanes,
      numFullAhead,
      ownRows: numAhead - numFullAhead * largest + 1,
      maxRows: largest,
      arrivalsPerNs: model.arrivals.perNs(nowNs),
      planAheadNs: this.config.scheduleAheadNs,
      nowNs,
      ...(latestFinishNs === undefined ? {} : { latestFinishNs }),
    });
  }

  /**
   * Predicted durations of `numRequests` rows run at `batchSize`: the bound deadline checks rely
   * on, and the typical one timelines use (exit-aware when the worker runs the model's ramps; the
   * fused model's when `runsFused` says release runs fused now).
   */
  batchTiming(worker: WorkerState, model: ModelState, numRequests: number, batchSize: number, seqLength: number, nowNs: number): BatchTiming | undefined {
    const key = profileKey(batchSize, seqLength);
    const boundWholeNs = this.estimator.estimateNs(model.spec.name, worker.id, key);
    if (boundWholeNs === undefined) return undefined;
    const typicalWholeNs = this.estimator.expectedNs(model.spec.name, worker.id, key) ?? boundWholeNs;
    const exits = model.spec.earlyExit;
    const timeline = model.spec.exitTimeline;
    if (!exits || exits.ramps.length === 0 || !timeline || !this.rampsReady(worker, model)) return { boundNs: boundWholeNs, expectedNs: typicalWholeNs };
    if (this.runsFused(worker, model, numRequests, batchSize, nowNs)) {
      const factor = timeline.fusedFactor(siteIdsOf(exits.ramps), batchSize);
      return { boundNs: boundWholeNs * factor, expectedNs: typicalWholeNs * factor };
    }
    const keepShare = exits.mode === 'compact' ? exits.monitorFraction : 0;
    const t = timeline.timing(exits.mode, siteIdsOf(exits.ramps), numRequests, batchSize, keepShare);
    return { boundNs: boundWholeNs * t.boundFactor, expectedNs: typicalWholeNs * t.expectedFactor };
  }
}
