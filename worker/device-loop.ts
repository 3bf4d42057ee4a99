/**
 * The worker's device: a time-release queue of actions and one executor that runs them one at a
 * time, punctually, on this host's monotonic clock (the worker's main thread runs it; see
 * inference-thread.ts for why not the inference thread).
 *
 * Rules (Clockwork's worker): actions start in order of their earliest start and never before
 * it; one that cannot start by its latest start is refused (TOO_LATE) without running; a LOAD that
 * would exceed the memory budget is refused (never an eviction: placement is the controller's);
 * an INFER whose model, batch size or inputs do not fit is refused with a code. Every action gets
 * exactly one outcome, with its measured start and end.
 */
import { ErrorCode, isEscapementError } from '../shared/error-codes.js';
import { loadModelEntry, runnableBatchSizes, type ModelEntry } from '../shared/model-manifest.js';
import type { Action, ActionType, BatchProfileEntry, ExitFeedback, InferAction, StageTiming } from '../shared/protocol.js';
import { byteLength, type Tensor } from '../shared/tensor.js';
import type { Executor, ExitReport } from './executor.js';
import type { CancelableTimer } from './precise-timer.js';

/** An action as the device gets it: its window translated to this host's monotonic clock. */
export interface DeviceJob {
  action: Action;
  tensors: Tensor[];
  receivedLocalNs: number;
  earliestLocalNs: number;
  latestLocalNs: number;
}

/** The one outcome of a job. */
export interface DeviceOutcome {
  actionId: number;
  actionType: ActionType;
  modelName: string;
  /** 0 on success, else an ErrorCode. */
  code: number;
  message?: string;
  receivedLocalNs: number;
  /** 0 when it never started (refused). */
  startLocalNs: number;
  endLocalNs: number;
  profile?: BatchProfileEntry[];
  weightsBytes?: number;
  outputs?: Tensor[];
  outputRows?: number[];
  feedback?: ExitFeedback;
  stages?: StageTiming[];
  /** What the device holds after this action (for the worker's heartbeats). */
  loadedModels: string[];
  usedBytes: number;
}

/** Rows answered at a ramp while an INFER goes on. */
export interface DeviceExit extends ExitReport {
  actionId: number;
  modelName: string;
}

export interface DeviceListener {
  outcome(outcome: DeviceOutcome): void;
  exit(exit: DeviceExit): void;
}

export interface DeviceLoopOptions {
  modelDir: string;
  memoryBudgetBytes: number;
  nowNs: () => number;
  /** Calls `fn` at local monotonic time `targetNs` (never before it). */
  startAt: (targetNs: number, fn: () => void) => CancelableTimer;
}

const TOO_LATE: Record<ActionType, number> = {
  load: ErrorCode.LOAD_TOO_LATE,
  unload: ErrorCode.UNLOAD_TOO_LATE,
  infer: ErrorCode.INFER_TOO_LATE,
  ramps: ErrorCode.RAMPS_TOO_LATE,
};
const FAILED: Record<ActionType, number> = {
  load: ErrorCode.LOAD_FAILED,
  unload: ErrorCode.UNLOAD_NOT_LOADED,
  infer: ErrorCode.INFER_RUNTIME_ERROR,
  ramps: ErrorCode.RAMPS_FAILED,
};

type Result = Pick<DeviceOutcome, 'profile' | 'weightsBytes' | 'outputs' | 'outputRows' | 'feedback' | 'stages'>;

/** A coded refusal raised while running a job. */
class Refusal extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Checks a batch's tensors against the model: names, dtypes, shapes with `batchSize` rows. */
export function checkBatchInputs(entry: ModelEntry, batchSize: number, tensors: readonly Tensor[]): string | undefined {
  if (tensors.length !== entry.manifest.inputs.length) return `expected ${entry.manifest.inputs.length} input tensor(s), got ${tensors.length}`;
  for (const spec of entry.manifest.inputs) {
    const t = tensors.find((x) => x.name === spec.name);
    if (!t) return `missing input '${spec.name}'`;
    if (t.dtype !== spec.dtype) return `input '${spec.name}' must be ${spec.dtype}, got ${t.dtype}`;
    // A -1 after the batch dimension is the sequence axis: one of the model's buckets.
    const buckets = entry.manifest.sequence?.buckets ?? [];
    const expected = [batchSize, ...spec.shape.slice(1).map((d, i) => (d < 0 && buckets.includes(t.shape[i + 1]!) ? t.shape[i + 1]! : d))];
    if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
      const shown = [batchSize, ...spec.shape.slice(1).map((d) => (d < 0 ? `{${buckets.join('|')}}` : d))];
      return `input '${spec.name}' must have shape [${shown.join(',')}], got [${t.shape.join(',')}]`;
    }
    if (t.data.byteLength !== byteLength(t)) return `input '${spec.name}' has ${t.data.byteLength} bytes, expected ${byteLength(t)}`;
  }
  return undefined;
}

export class DeviceLoop {
  /** Waiting jobs by earliest start (ties in arrival order). */
  private readonly queue: DeviceJob[] = [];
  private readonly loaded = new Map<string, { entry: ModelEntry; weightsBytes: number; batchSizes: number[] }>();
  private usedBytes = 0;
  private busy = false;
  private closed = false;
  private forgetPending = false;
  private wakeTimer: CancelableTimer | undefined;

  constructor(
    private readonly executor: Executor,
    private readonly options: DeviceLoopOptions,
    private readonly listener: DeviceListener,
  ) {}

  /** Jobs waiting or running. */
  get numPending(): number {
    return this.queue.length + (this.busy ? 1 : 0);
  }

  submit(job: DeviceJob): void {
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.earliestLocalNs > job.earliestLocalNs) i--;
    this.queue.splice(i, 0, job);
    this.pump();
  }

  /** Refuses every waiting job (the one running finishes). */
  drain(code: number, message: string): void {
    for (const job of this.queue.splice(0, this.queue.length)) this.refuse(job, code, message);
  }

  /**
   * Unloads every model once the running job (if any) ends, before any later job starts. For a
   * worker re-registering with a controller that no longer knows what it loaded: the controller
   * plans its memory as empty, so models it forgot would over-commit it.
   */
  forgetModels(): void {
    this.forgetPending = true;
    this.pump();
  }

  close(): void {
    this.closed = true;
    this.wakeTimer?.cancel();
  }

  /** Starts the head job if the executor is idle and its window has opened. */
  private pump(): void {
    if (this.busy || this.closed) return;
    if (this.forgetPending) {
      this.forgetPending = false;
      this.busy = true;
      void this.unloadAll().then(() => {
        this.busy = false;
        this.pump();
      });
      return;
    }
    const head = this.queue[0];
    if (!head) return;
    if (this.options.nowNs() < head.earliestLocalNs) {
      this.wakeTimer?.cancel();
      this.wakeTimer = this.options.startAt(head.earliestLocalNs, () => this.pump());
      return;
    }
    this.queue.shift();
    const startLocalNs = this.options.nowNs();
    if (startLocalNs > head.latestLocalNs) {
      const lateMs = (startLocalNs - head.latestLocalNs) / 1e6;
      this.refuse(head, TOO_LATE[head.action.type], `could not start before its window closed (${lateMs.toFixed(3)} ms late)`);
      this.pump();
      return;
    }
    this.busy = true;
    // NOTE: the next job starts as soon as this one ends, in the same thread (no hand-off).
    void this.execute(head).then((result) => {
      this.busy = false;
      this.finish(head, startLocalNs, result);
      this.pump();
    });
  }

  private async execute(job: DeviceJob): Promise<Result | Refusal> {
    const { action } = job;
    try {
      switch (action.type) {
        case 'load':
          return await this.runLoad(job);
        case 'unload': {
          const model = this.loaded.get(action.modelName);
          if (!model) return new Refusal(ErrorCode.UNLOAD_NOT_LOADED, `${action.modelName} is not loaded`);
          await this.executor.unload(action.modelName);
          this.loaded.delete(action.modelName);
          this.usedBytes -= model.weightsBytes;
          return {};
        }
        case 'infer':
          return await this.runInfer(job, action);
        case 'ramps':
          if (!this.loaded.has(action.modelName)) return new Refusal(ErrorCode.RAMPS_NOT_LOADED, `${action.modelName} is not loaded`);
          await this.executor.prepareRamps(action.modelName, action.siteIds, action.fused ?? false, action.warmup ?? 'full');
          return {};
      }
    } catch (err) {
      return new Refusal(isEscapementError(err) ? err.code : FAILED[action.type], (err as Error).message);
    }
  }

  private async unloadAll(): Promise<void> {
    for (const [name, model] of [...this.loaded]) {
      try {
        await this.executor.unload(name);
      } catch {
        // NOTE: a session that fails to release is gone from the plan either way
      }
      this.loaded.delete(name);
      this.usedBytes -= model.weightsBytes;
    }
  }

  private async runLoad(job: DeviceJob): Promise<Result | Refusal> {
    const action = job.action as Extract<Action, { type: 'load' }>;
    const previous = this.loaded.get(action.modelName);
    let entry: ModelEntry;
    try {
      entry = loadModelEntry(this.options.modelDir, action.modelName);
    } catch (err) {
      return new Refusal(ErrorCode.LOAD_UNKNOWN_MODEL, (err as Error).message);
    }
    const freeBytes = this.options.memoryBudgetBytes - this.usedBytes + (previous?.weightsBytes ?? 0);
    if (entry.fileBytes > freeBytes)
      return new Refusal(ErrorCode.LOAD_INSUFFICIENT_MEMORY, `needs ${entry.fileBytes} bytes, ${freeBytes} free of ${this.options.memoryBudgetBytes}`);
    const runnable = runnableBatchSizes(entry.manifest);
    const badSize = action.batchSizes.find((b) => !runnable.includes(b));
    if (badSize !== undefined) return new Refusal(ErrorCode.LOAD_FAILED, `batch size ${badSize} cannot run on this model (it runs ${runnable.join(',')})`);
    // NOTE: LOAD of a loaded model is idempotent (it re-profiles), so a controller that lost
    // track of an earlier LOAD can always recover by sending another.
    const outcome = await this.executor.load(entry, action.batchSizes);
    this.loaded.set(action.modelName, { entry, weightsBytes: outcome.weightsBytes, batchSizes: action.batchSizes });
    this.usedBytes += outcome.weightsBytes - (previous?.weightsBytes ?? 0);
    return { profile: outcome.profile, weightsBytes: outcome.weightsBytes };
  }

  private async runInfer(job: DeviceJob, action: InferAction): Promise<Result | Refusal> {
    const model = this.loaded.get(action.modelName);
    if (!model) return new Refusal(ErrorCode.INFER_NOT_LOADED, `${action.modelName} is not loaded`);
    if (!model.batchSizes.includes(action.batchSize))
      return new Refusal(ErrorCode.INFER_INVALID_BATCH_SIZE, `batch size ${action.batchSize} was not profiled (have ${model.batchSizes.join(',')})`);
    const problem = checkBatchInputs(model.entry, action.batchSize, job.tensors);
    if (problem) return new Refusal(ErrorCode.INFER_INVALID_INPUT, problem);
    const outcome = await this.executor.infer(action.modelName, action.batchSize, job.tensors, {
      numRequests: action.numRequests,
      ...(action.earlyExit ? { earlyExit: action.earlyExit } : {}),
      // Each exit is answered now, while the batch goes on.
      onExit: (report) => this.listener.exit({ ...report, actionId: action.actionId, modelName: action.modelName }),
    });
    return {
      outputs: outcome.outputs,
      stages: outcome.stages,
      ...(outcome.outputRows ? { outputRows: outcome.outputRows } : {}),
      ...(outcome.feedback ? { feedback: outcome.feedback } : {}),
    };
  }

  private finish(job: DeviceJob, startLocalNs: number, result: Result | Refusal): void {
    if (result instanceof Refusal) {
      this.refuse(job, result.code, result.message, startLocalNs);
      return;
    }
    this.listener.outcome({ ...this.base(job, ErrorCode.OK, startLocalNs), ...result });
  }

  private refuse(job: DeviceJob, code: number, message: string, startLocalNs = 0): void {
    this.listener.outcome({ ...this.base(job, code, startLocalNs), message });
  }

  private base(job: DeviceJob, code: number, startLocalNs: number): DeviceOutcome {
    return {
      actionId: job.action.actionId,
      actionType: job.action.type,
      modelName: job.action.modelName,
      code,
      receivedLocalNs: job.receivedLocalNs,
      startLocalNs,
      endLocalNs: this.options.nowNs(),
      loadedModels: [...this.loaded.keys()],
      usedBytes: this.usedBytes,
    };
  }
}
