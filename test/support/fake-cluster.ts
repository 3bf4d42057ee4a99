/**
 * A fake cluster for scheduler tests: drives the pure `Scheduler` with a virtual clock and fake
 * workers that execute planned actions in order with knobs for latency and failures. No
 * processes, sockets or sleeps.
 */
import { VirtualClock } from '../../shared/clock.js';
import { ErrorCode } from '../../shared/error-codes.js';
import type { ActionResultMsg } from '../../shared/protocol.js';
import type { ModelSpec } from '../../controller/cluster-state.js';
import { Scheduler, type PlannedAction, type RequestOutcome } from '../../controller/scheduler.js';
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
}

interface Running {
  planned: PlannedAction;
  startNs: number;
  endNs: number;
}

/** Executes one worker's actions back to back, as a real worker would. */
export class FakeWorker {
  readonly knobs: FakeWorkerKnobs;
  readonly queue: PlannedAction[] = [];
  private running: Running | undefined;
  private freeAtNs = 0;
  readonly executed: PlannedAction[] = [];

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

  /** Starts queued work if idle; returns the time of the next completion, if any. */
  advance(nowNs: number): number | undefined {
    if (!this.running && this.queue.length > 0) {
      const planned = this.queue.shift()!;
      const startNs = Math.max(nowNs, this.freeAtNs);
      this.running = { planned, startNs, endNs: startNs + this.durationNs(planned) };
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
    const a = r.planned.action;
    const timing = { receivedNs: r.startNs, startNs: r.startNs, endNs: r.endNs, durationNs: r.endNs - r.startNs, sentNs: r.endNs };
    const msg: ActionResultMsg = { type: 'result', actionId: a.actionId, actionType: a.type, modelName: a.modelName, code: ErrorCode.OK, timing };
    if (a.type === 'load') {
      const profileNs = this.knobs.profileNs ?? this.knobs.inferNs;
      const buckets = this.bucketsOf(a.modelName) ?? [0];
      msg.profile = buckets.flatMap((seq) =>
        a.batchSizes.map((b) => ({ batchSize: b, ...(seq > 0 ? { sequenceLength: seq } : {}), durationNs: profileNs(a.modelName, b, seq), p99DurationNs: profileNs(a.modelName, b, seq) })),
      );
    }
    if (a.type === 'infer' && this.knobs.failInferWith !== 0) {
      msg.code = this.knobs.failInferWith;
      msg.message = 'injected failure';
    }
    return msg;
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
        if (result) this.record(this.scheduler.onResult(w.id, result, this.clock.nowNs()).outcomes);
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
