/**
 * A fake cluster for scheduler tests: drives the pure `Scheduler` with a virtual clock and fake
 * workers that execute planned actions in order with knobs for latency and failures. No
 * processes, sockets or sleeps.
 */
import { VirtualClock } from '../../shared/clock.js';
import { ErrorCode } from '../../shared/error-codes.js';
import type { ActionResultMsg, ExitMsg, InferAction } from '../../shared/protocol.js';
import type { ModelSpec } from '../../controller/cluster-state.js';
import { Scheduler } from '../../controller/scheduler.js';
import type { PlannedAction, RequestOutcome } from '../../controller/core-outputs.js';
import type { SchedulerConfig } from '../../controller/scheduler-config.js';

export const MS = 1_000_000;

export function modelSpec(name: string, overrides: Partial<ModelSpec> = {}): ModelSpec {
  return {
    name,
    inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 4] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
    batchSizes: [1, 2, 4, 8, 16],
    weightsBytes: 100,
    nominalBatch1Ns: 1 * MS,
    ...overrides,
  };
}

export interface FakeWorkerKnobs {
  /** Actual duration of an INFER at a batch size (and padded sequence length, for text models) (ns). Default 1 ms + 0.5 ms per item. */
  inferNs: (model: string, batchSize: number, seqLength: number) => number;
  /** Actual LOAD duration (ns). Default 10 ms. */
  loadNs: number;
  /** Error code to answer INFERs with instead of running them (0: run them). */
  failInferWith: number;
  /** Profile reported by LOAD: by default the true durations. */
  profileNs?: (model: string, batchSize: number, seqLength: number) => number;
  /**
   * INFERs with ramps: the share of a batch's request rows answered at each active ramp (in row
   * order, at the first ramp that takes them), at a given time. Default: nobody.
   */
  exitShares?: (model: string, nowNs: number) => number[];
  /**
   * INFERs with ramps: duration of chain segment `segment` (of `numSegments`) on `rows` rows.
   * Default: `inferNs` at the batch size, split evenly over the segments and linear in rows.
   */
  segmentNs?: (model: string, segment: number, rows: number, numSegments: number) => number;
  /** Release INFERs on the fused model: their duration. Default: `inferNs` at the batch size. */
  fusedNs?: (model: string, batchSize: number) => number;
  /** How long after it was planned an action can start at the earliest (the hop to the worker, its dispatch). Default 0. */
  startDelayNs?: number;
}

interface ChainRun {
  answeredAt: number[];
  kept: Set<number>;
  stages: { name: string; durationNs: number; numRows: number }[];
  durationNs: number;
}

interface Running {
  planned: PlannedAction;
  startNs: number;
  endNs: number;
  /** INFERs with ramps: what the chain did. */
  chain?: ChainRun;
}

/** Executes one worker's actions back to back, as a real worker would. */
export class FakeWorker {
  readonly knobs: FakeWorkerKnobs;
  readonly queue: PlannedAction[] = [];
  private running: Running | undefined;
  private freeAtNs = 0;
  readonly executed: PlannedAction[] = [];
  /** When each executed action ran, in the same order. */
  readonly spans: { startNs: number; endNs: number }[] = [];
  /** Exit messages of the INFER completed last (delivered before its result). */
  exits: ExitMsg[] = [];
  private exitDraw = 0;

  constructor(
    readonly id: string,
    knobs: Partial<FakeWorkerKnobs> = {},
    /** Text models' sequence buckets (a real worker reads them from the manifest). */
    private readonly bucketsOf: (model: string) => number[] | undefined = () => undefined,
  ) {
    this.knobs = { inferNs: (_m, b) => 1 * MS + 0.5 * MS * b, loadNs: 10 * MS, failInferWith: 0, ...knobs };
  }

  durationNs(planned: PlannedAction): number {
    const a = planned.action;
    if (a.type === 'load') return this.knobs.loadNs;
    if (a.type === 'unload') return 0.1 * MS;
    if (a.type === 'ramps') return 5 * MS;
    return this.knobs.inferNs(a.modelName, a.batchSize, a.sequenceLength ?? 0);
  }

  /** An INFER with ramps, run as a chain: which rows each ramp answers, and how long it takes. */
  private chainRun(a: InferAction, nowNs: number): ChainRun {
    const plan = a.earlyExit!;
    const numSegments = plan.ramps.length + 1;
    const shares = this.knobs.exitShares?.(a.modelName, nowNs) ?? plan.ramps.map(() => 0);
    const segmentNs = this.knobs.segmentNs ?? ((m, _s, rows, n) => (this.knobs.inferNs(m, a.batchSize, 0) * rows) / (a.batchSize * n));
    // Each row is answered at ramp i with probability shares[i] (unconditional), drawn from a
    // low-discrepancy sequence: deterministic, and exact over many rows of any batch size.
    const answeredAt = new Array<number>(a.numRequests).fill(-1);
    for (let row = 0; row < a.numRequests; row++) {
      this.exitDraw = (this.exitDraw + 0.6180339887498949) % 1;
      let upTo = 0;
      for (let i = 0; i < plan.ramps.length && answeredAt[row]! < 0; i++) {
        upTo += shares[i]!;
        if (this.exitDraw < upTo) answeredAt[row] = i;
      }
    }
    const kept = new Set(plan.keepRows);
    if (plan.fused) {
      // The whole model with the heads as outputs: one stage, nobody answered early.
      const fusedNs = this.knobs.fusedNs?.(a.modelName, a.batchSize) ?? this.knobs.inferNs(a.modelName, a.batchSize, 0);
      return { answeredAt, kept, stages: [{ name: 'fused', durationNs: fusedNs, numRows: a.batchSize }], durationNs: fusedNs };
    }
    const stages: { name: string; durationNs: number; numRows: number }[] = [];
    let durationNs = 0;
    for (let s = 0; s < numSegments; s++) {
      const alive = plan.mode === 'release' ? a.batchSize : answeredAt.filter((at, r) => at < 0 || at >= s || kept.has(r)).length;
      const ns = segmentNs(a.modelName, s, alive, numSegments);
      durationNs += ns;
      stages.push({ name: s < plan.ramps.length ? `segment->${plan.ramps[s]!.siteId}` : 'final', durationNs: ns, numRows: alive });
    }
    return { answeredAt, kept, stages, durationNs };
  }

  /** Starts queued work if idle; returns the time of the next completion, if any. */
  advance(nowNs: number): number | undefined {
    if (!this.running && this.queue.length > 0) {
      const planned = this.queue.shift()!;
      const startNs = Math.max(nowNs, this.freeAtNs, planned.action.earliestNs + (this.knobs.startDelayNs ?? 0));
      const a = planned.action;
      const chain = a.type === 'infer' && a.earlyExit && a.earlyExit.ramps.length > 0 && this.knobs.failInferWith === 0 ? this.chainRun(a, startNs) : undefined;
      this.running = { planned, startNs, endNs: startNs + (chain?.durationNs ?? this.durationNs(planned)), ...(chain ? { chain } : {}) };
    }
    return this.running?.endNs;
  }

  /** Completes the running action if it ends by `nowNs`. */
  complete(nowNs: number): ActionResultMsg | undefined {
    const r = this.running;
    if (!r || r.endNs > nowNs) return undefined;
    this.running = undefined;
    this.freeAtNs = r.endNs;
    this.executed.push(r.planned);
    this.spans.push({ startNs: r.startNs, endNs: r.endNs });
    const a = r.planned.action;
    const timing = { receivedNs: r.startNs, startNs: r.startNs, endNs: r.endNs, durationNs: r.endNs - r.startNs, sentNs: r.endNs };
    const msg: ActionResultMsg = { type: 'result', actionId: a.actionId, actionType: a.type, modelName: a.modelName, code: ErrorCode.OK, timing };
    if (a.type === 'load') {
      const profileNs = this.knobs.profileNs ?? this.knobs.inferNs;
      const buckets = this.bucketsOf(a.modelName) ?? [0];
      msg.profile = buckets.flatMap((seq) =>
        a.batchSizes.map((b) => ({
          batchSize: b,
          ...(seq > 0 ? { sequenceLength: seq } : {}),
          durationNs: profileNs(a.modelName, b, seq),
          p99DurationNs: profileNs(a.modelName, b, seq),
        })),
      );
    }
    this.exits = [];
    if (a.type === 'infer' && this.knobs.failInferWith !== 0) {
      msg.code = this.knobs.failInferWith;
      msg.message = 'injected failure';
    } else if (a.type === 'infer' && r.chain) {
      this.reportChain(a, r.chain, r.endNs, msg);
    }
    return msg;
  }

  /** The results of a chain run as a real worker reports them: exits, feedback, stages, outputs. */
  private reportChain(a: InferAction, chain: ChainRun, endNs: number, msg: ActionResultMsg): void {
    const plan = a.earlyExit!;
    const { answeredAt, kept, stages } = chain;
    const confidences = plan.ramps.map((_, i) => answeredAt.map((at) => (at === i ? 1 : at >= 0 && at < i ? Number.NaN : 0)));
    const runsToEnd = (at: number, row: number) => at < 0 || kept.has(row) || plan.mode === 'release';
    msg.feedback = {
      siteIds: plan.ramps.map((r) => r.siteId),
      confidences,
      predictions: confidences.map((cs) => cs.map(() => 0)),
      finalPredictions: answeredAt.map((at, row) => (runsToEnd(at, row) ? 0 : -1)),
    };
    msg.stages = stages;
    if (plan.fused) return; // no exits: every row gets the full model's answer in the result
    if (plan.mode === 'compact') msg.outputRows = answeredAt.flatMap((at, row) => (runsToEnd(at, row) ? [row] : []));
    this.exits = plan.ramps.flatMap((ramp, i) => {
      const rows = answeredAt.flatMap((at, row) => (at === i ? [row] : []));
      return rows.length === 0
        ? []
        : [
            {
              type: 'exit' as const,
              actionId: a.actionId,
              modelName: a.modelName,
              siteId: ramp.siteId,
              rows,
              confidences: rows.map(() => 1),
              predictions: rows.map(() => 0),
              atNs: endNs,
              outputs: [],
            },
          ];
    });
  }
}

/** The scheduler, its fake workers and a virtual clock, stepped event by event. */
export class FakeCluster {
  readonly clock = new VirtualClock(1_000 * MS);
  readonly scheduler: Scheduler;
  readonly workers = new Map<string, FakeWorker>();
  readonly outcomes = new Map<number, RequestOutcome[]>();
  private nextRequestId = 1;

  constructor(
    private readonly models: ModelSpec[],
    config: Partial<SchedulerConfig> = {},
  ) {
    this.scheduler = new Scheduler(models, config);
  }

  addWorker(id: string, memoryBudgetBytes = 1_000, knobs: Partial<FakeWorkerKnobs> = {}): FakeWorker {
    const worker = new FakeWorker(id, knobs, (model) => this.models.find((m) => m.name === model)?.sequenceBuckets);
    this.workers.set(id, worker);
    this.scheduler.addWorker(id, memoryBudgetBytes);
    return worker;
  }

  private record(outcomes: RequestOutcome[]): void {
    for (const o of outcomes) {
      const list = this.outcomes.get(o.requestId) ?? [];
      list.push(o);
      this.outcomes.set(o.requestId, list);
    }
  }

  /** Submits a request with a relative deadline (text models: and its sequence bucket); returns its id. */
  submit(model: string, sloMs: number, seqLength?: number): number {
    const id = this.nextRequestId++;
    const nowNs = this.clock.nowNs();
    const outcome = this.scheduler.onArrival({ id, model, arrivalNs: nowNs, deadlineNs: nowNs + sloMs * MS, ...(seqLength ? { seqLength } : {}) }, nowNs);
    if (outcome) this.record([outcome]);
    return id;
  }

  plan(): PlannedAction[] {
    const { actions, outcomes } = this.scheduler.plan(this.clock.nowNs());
    this.record(outcomes);
    for (const a of actions) this.workers.get(a.workerId)!.queue.push(a);
    return actions;
  }

  /** Runs until `untilNs`: workers execute, results fold back, the scheduler replans. */
  runUntil(untilNs: number): void {
    for (;;) {
      this.plan();
      const nowNs = this.clock.nowNs();
      let nextNs = untilNs;
      for (const w of this.workers.values()) {
        const endNs = w.advance(nowNs);
        if (endNs !== undefined) nextNs = Math.min(nextNs, endNs);
      }
      // Like the controller's adapter: wake for the core no sooner than 1 ms from now.
      const wakeNs = this.scheduler.nextWakeupNs(nowNs);
      if (wakeNs !== undefined) nextNs = Math.min(nextNs, Math.max(wakeNs, nowNs + 1 * MS));
      if (nextNs <= nowNs && nowNs >= untilNs) return;
      this.clock.setNs(Math.max(nowNs, nextNs));
      for (const w of this.workers.values()) {
        const result = w.complete(this.clock.nowNs());
        if (!result) continue;
        for (const exit of w.exits) this.record(this.scheduler.onExit(w.id, exit, this.clock.nowNs()));
        this.record(this.scheduler.onResult(w.id, result, this.clock.nowNs()).outcomes);
      }
      if (this.clock.nowNs() >= untilNs) {
        this.plan();
        return;
      }
    }
  }

  runForMs(ms: number): void {
    this.runUntil(this.clock.nowNs() + ms * MS);
  }

  outcomeOf(id: number): RequestOutcome | undefined {
    const list = this.outcomes.get(id);
    if (list && list.length > 1) throw new Error(`request ${id} was answered ${list.length} times`);
    return list?.[0];
  }
}
