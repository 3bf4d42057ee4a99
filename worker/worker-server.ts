/**
 * The worker process's adapter: a zeromq DEALER to the controller, the time-release action
 * queue, and one executor that runs actions one at a time.
 *
 * The worker is punctual and dumb. It never decides policy: it starts each action no earlier
 * than `earliestNs`, refuses it (TOO_LATE) if it cannot start by `latestNs`, refuses a LOAD that
 * would exceed its memory budget instead of evicting, and reports timings on the controller's
 * clock. Liveness is shown by application heartbeats (ZMTP heartbeats cannot see a blocked event
 * loop); a worker the controller no longer knows is told to re-register and does so.
 */
import { hostname } from 'node:os';
import * as zmq from 'zeromq';
import { monotonicNowNs } from '../shared/clock.js';
import { ClockSyncSession } from '../shared/clock-sync.js';
import { DEFAULT_MAX_TENSOR_BYTES, decodeMessage, encodeMessage, isProtocolError } from '../shared/codec.js';
import { ErrorCode, isEscapementError } from '../shared/error-codes.js';
import { loadModelEntry, runnableBatchSizes, type ModelEntry } from '../shared/model-manifest.js';
import {
  PROTOCOL_VERSION,
  type Action,
  type ActionResultMsg,
  type AnyMessage,
  type InferAction,
} from '../shared/protocol.js';
import { byteLength, type Tensor } from '../shared/tensor.js';
import { ActionQueue, type QueuedAction } from './action-queue.js';
import { SerialSender } from '../shared/serial-sender.js';
import type { PeerKeys } from '../shared/curve-keys.js';
import type { Executor } from './executor.js';
import { startAt, type CancelableTimer } from './precise-timer.js';

export interface WorkerServerOptions {
  controllerUrl: string;
  workerId: string;
  modelDir: string;
  memoryBudgetBytes: number;
  /** Application heartbeat period. Default 200 ms. */
  heartbeatIntervalMs: number;
  /** How often the clock offset is re-estimated. Default 5 s. */
  clockResyncIntervalMs: number;
  log: (line: string) => void;
  /** CURVE: this worker's key pair and the controller's public key. */
  curve?: PeerKeys;
  /**
   * Testing aid: pretend this host's clock is this far from the controller's (ns), as on another
   * machine. The offset estimation must absorb it. Default 0.
   */
  clockSkewNs?: number;
}

const TOO_LATE: Record<Action['type'], number> = { load: ErrorCode.LOAD_TOO_LATE, unload: ErrorCode.UNLOAD_TOO_LATE, infer: ErrorCode.INFER_TOO_LATE, ramps: ErrorCode.RAMPS_TOO_LATE };
const FAILED: Record<Action['type'], number> = { load: ErrorCode.LOAD_FAILED, unload: ErrorCode.UNLOAD_NOT_LOADED, infer: ErrorCode.INFER_RUNTIME_ERROR, ramps: ErrorCode.RAMPS_FAILED };

export class WorkerServer {
  private readonly dealer: zmq.Dealer;
  private readonly queue = new ActionQueue();
  private readonly loaded = new Map<string, { entry: ModelEntry; weightsBytes: number; batchSizes: number[] }>();
  private readonly clockSync: ClockSyncSession;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly sender: SerialSender;
  private wakeTimer: CancelableTimer | undefined;
  private offsetNs = 0;
  private usedBytes = 0;
  private busy = false;
  private registered = false;
  /** Registration attempt counter; see ReregisterMsg. */
  private epoch = 0;
  private closed = false;
  /** Actions started later than their planned start, for telemetry (ns). */
  readonly startLatenessNs: number[] = [];

  constructor(
    private readonly executor: Executor,
    private readonly options: WorkerServerOptions,
  ) {
    const curve = options.curve ? { curveServerKey: options.curve.serverPublicKey, curvePublicKey: options.curve.publicKey, curveSecretKey: options.curve.secretKey } : {};
    this.dealer = new zmq.Dealer({ routingId: options.workerId, linger: 0, sendHighWaterMark: 10_000, receiveHighWaterMark: 10_000, maxMessageSize: DEFAULT_MAX_TENSOR_BYTES, ...curve });
    this.skewNs = options.clockSkewNs ?? 0;
    this.sender = new SerialSender(this.dealer, (err) => {
      if (!this.closed) this.options.log(`send failed: ${err.message}`);
    });
    this.clockSync = new ClockSyncSession((ping) => this.send(ping), () => this.localNowNs());
  }

  private readonly skewNs: number;

  /** This worker's clock (the monotonic clock, plus the test skew). */
  private localNowNs(): number {
    return monotonicNowNs() + this.skewNs;
  }

  /** Controller time now, as this worker estimates it. */
  controllerNowNs(): number {
    return this.localNowNs() + this.offsetNs;
  }

  async start(): Promise<void> {
    this.dealer.connect(this.options.controllerUrl);
    void this.readLoop();
    await this.register();
    this.timers.push(setInterval(() => this.heartbeat(), this.options.heartbeatIntervalMs));
    this.timers.push(setInterval(() => void this.resyncClock(), this.options.clockResyncIntervalMs));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.wakeTimer?.cancel();
    this.sender.close();
    this.dealer.close();
    await this.executor.close();
  }

  private send(msg: AnyMessage, tensors: Uint8Array[] = []): void {
    if (this.closed) return;
    // NOTE: bounded like every socket's queue: a full queue drops the message (logged); the
    // controller's overdue-action expiry covers a lost result.
    if (!this.sender.send(encodeMessage(msg, tensors))) this.options.log(`send queue full: dropped a '${msg.type}' message`);
  }

  private async register(): Promise<void> {
    while (!this.registered && !this.closed) {
      this.epoch++;
      this.send({
        type: 'hello',
        v: PROTOCOL_VERSION,
        workerId: this.options.workerId,
        device: this.executor.device,
        memoryBudgetBytes: this.options.memoryBudgetBytes,
        pid: process.pid,
        hostname: hostname(),
        epoch: this.epoch,
      });
      for (let waitedMs = 0; waitedMs < 1000 && !this.registered && !this.closed; waitedMs += 20) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await this.resyncClock(32);
    this.options.log(`clock offset to the controller ${(this.offsetNs / 1e6).toFixed(3)} ms`);
  }

  private async resyncClock(numPings = 8): Promise<void> {
    const estimate = await this.clockSync.estimate(numPings);
    if (estimate) this.offsetNs = estimate.offsetNs;
  }

  private heartbeat(): void {
    if (!this.registered) return;
    this.send({
      type: 'heartbeat',
      workerId: this.options.workerId,
      epoch: this.epoch,
      numQueuedActions: this.queue.length + (this.busy ? 1 : 0),
      usedMemoryBytes: this.usedBytes,
      loadedModels: [...this.loaded.keys()],
    });
  }

  private async readLoop(): Promise<void> {
    try {
      for await (const frames of this.dealer) {
        const receivedLocalNs = this.localNowNs();
        try {
          const { header, tensors } = decodeMessage(frames);
          this.onMessage(header, tensors, receivedLocalNs);
        } catch (err) {
          // A malformed message from the controller is logged and dropped; the worker keeps running.
          this.options.log(`dropped a message: ${isProtocolError(err) ? err.message : String(err)}`);
        }
      }
    } catch (err) {
      if (!this.closed) this.options.log(`reader stopped: ${(err as Error).message}`);
    }
  }

  private onMessage(msg: AnyMessage, tensors: Tensor[], receivedLocalNs: number): void {
    switch (msg.type) {
      case 'hello_ack':
        if (msg.epoch !== this.epoch) return; // an answer to an earlier attempt
        if (!this.registered) this.options.log(`registered with ${this.options.controllerUrl}`);
        this.registered = true;
        return;
      case 'reregister':
        if (this.registered && msg.epoch >= this.epoch) {
          this.options.log(`controller asked to re-register: ${msg.reason}`);
          this.registered = false;
          // Whatever the controller planned for us before is void; it will plan again.
          for (const queued of this.queue.drain()) this.refuse(queued, ErrorCode.UNKNOWN_WORKER, 'worker re-registering');
          void this.register();
        }
        return;
      case 'clock_pong':
        this.clockSync.onPong(msg);
        return;
      case 'load':
      case 'unload':
      case 'infer':
      case 'ramps':
        this.queue.push(msg, tensors, receivedLocalNs);
        this.pump();
        return;
      default:
        this.options.log(`ignored unexpected '${msg.type}' message`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Executing actions

  /** Starts the head action if the executor is idle and its window has opened. */
  private pump(): void {
    if (this.busy || this.closed) return;
    const head = this.queue.peek();
    if (!head) return;
    const earliestLocalNs = head.action.earliestNs - this.offsetNs;
    if (this.localNowNs() < earliestLocalNs) {
      this.wakeTimer?.cancel();
      this.wakeTimer = startAt(earliestLocalNs - this.skewNs, () => this.pump()); // the timer runs on the real clock
      return;
    }
    this.queue.shift();
    const startLocalNs = this.localNowNs();
    if (startLocalNs > head.action.latestNs - this.offsetNs) {
      const lateMs = (startLocalNs - (head.action.latestNs - this.offsetNs)) / 1e6;
      this.refuse(head, TOO_LATE[head.action.type], `could not start before its window closed (${lateMs.toFixed(3)} ms late)`);
      setImmediate(() => this.pump());
      return;
    }
    this.busy = true;
    this.startLatenessNs.push(startLocalNs + this.offsetNs - head.action.expectedStartNs);
    void this.execute(head, startLocalNs).finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  private async execute(queued: QueuedAction, startLocalNs: number): Promise<void> {
    const { action } = queued;
    try {
      switch (action.type) {
        case 'load':
          return await this.runLoad(queued, startLocalNs);
        case 'unload': {
          const model = this.loaded.get(action.modelName);
          if (!model) return this.refuse(queued, ErrorCode.UNLOAD_NOT_LOADED, `${action.modelName} is not loaded`, startLocalNs);
          await this.executor.unload(action.modelName);
          this.loaded.delete(action.modelName);
          this.usedBytes -= model.weightsBytes;
          return this.reply(queued, startLocalNs, {});
        }
        case 'infer':
          return await this.runInfer(queued, action, startLocalNs);
        case 'ramps':
          if (!this.loaded.has(action.modelName)) return this.refuse(queued, ErrorCode.RAMPS_NOT_LOADED, `${action.modelName} is not loaded`, startLocalNs);
          await this.executor.prepareRamps(action.modelName, action.siteIds);
          return this.reply(queued, startLocalNs, {});
      }
    } catch (err) {
      const code = isEscapementError(err) ? err.code : FAILED[action.type];
      this.refuse(queued, code, (err as Error).message, startLocalNs);
    }
  }

  private async runLoad(queued: QueuedAction, startLocalNs: number): Promise<void> {
    const action = queued.action as Extract<Action, { type: 'load' }>;
    const previous = this.loaded.get(action.modelName);
    let entry: ModelEntry;
    try {
      entry = loadModelEntry(this.options.modelDir, action.modelName);
    } catch (err) {
      return this.refuse(queued, ErrorCode.LOAD_UNKNOWN_MODEL, (err as Error).message, startLocalNs);
    }
    const freeBytes = this.options.memoryBudgetBytes - this.usedBytes + (previous?.weightsBytes ?? 0);
    if (entry.fileBytes > freeBytes) {
      return this.refuse(queued, ErrorCode.LOAD_INSUFFICIENT_MEMORY, `needs ${entry.fileBytes} bytes, ${freeBytes} free of ${this.options.memoryBudgetBytes}`, startLocalNs);
    }
    const runnable = runnableBatchSizes(entry.manifest);
    const badSize = action.batchSizes.find((b) => !runnable.includes(b));
    if (badSize !== undefined) return this.refuse(queued, ErrorCode.LOAD_FAILED, `batch size ${badSize} cannot run on this model (it runs ${runnable.join(',')})`, startLocalNs);
    // NOTE: LOAD of a loaded model is idempotent (it re-profiles), so a controller that lost
    // track of an earlier LOAD can always recover by sending another.
    const outcome = await this.executor.load(entry, action.batchSizes);
    this.loaded.set(action.modelName, { entry, weightsBytes: outcome.weightsBytes, batchSizes: action.batchSizes });
    this.usedBytes += outcome.weightsBytes - (previous?.weightsBytes ?? 0);
    this.reply(queued, startLocalNs, { profile: outcome.profile, weightsBytes: outcome.weightsBytes });
  }

  private async runInfer(queued: QueuedAction, action: InferAction, startLocalNs: number): Promise<void> {
    const model = this.loaded.get(action.modelName);
    if (!model) return this.refuse(queued, ErrorCode.INFER_NOT_LOADED, `${action.modelName} is not loaded`, startLocalNs);
    if (!model.batchSizes.includes(action.batchSize)) {
      return this.refuse(queued, ErrorCode.INFER_INVALID_BATCH_SIZE, `batch size ${action.batchSize} was not profiled (have ${model.batchSizes.join(',')})`, startLocalNs);
    }
    const problem = checkBatchInputs(model.entry, action.batchSize, queued.tensors);
    if (problem) return this.refuse(queued, ErrorCode.INFER_INVALID_INPUT, problem, startLocalNs);
    const outcome = await this.executor.infer(action.modelName, action.batchSize, queued.tensors, {
      numRequests: action.numRequests,
      ...(action.earlyExit ? { earlyExit: action.earlyExit } : {}),
      // Each exit is answered now, while the batch goes on.
      onExit: (report) =>
        this.send(
          {
            type: 'exit',
            actionId: action.actionId,
            modelName: action.modelName,
            siteId: report.siteId,
            rows: report.rows,
            confidences: report.confidences,
            predictions: report.predictions,
            atNs: report.atLocalNs + this.offsetNs,
            outputs: [{ name: 'probabilities', dtype: 'float32', shape: [report.rows.length, report.numClasses] }],
          },
          [report.probabilities],
        ),
    });
    this.reply(queued, startLocalNs, {
      outputs: outcome.outputs,
      stages: outcome.stages,
      ...(outcome.outputRows ? { outputRows: outcome.outputRows } : {}),
      ...(outcome.feedback ? { feedback: outcome.feedback } : {}),
    });
  }

  private reply(
    queued: QueuedAction,
    startLocalNs: number,
    extra: Pick<ActionResultMsg, 'profile' | 'weightsBytes' | 'stages' | 'outputRows' | 'feedback'> & { outputs?: Tensor[] },
  ): void {
    const endLocalNs = this.localNowNs();
    const { outputs, ...rest } = extra;
    const msg: ActionResultMsg = {
      type: 'result',
      actionId: queued.action.actionId,
      actionType: queued.action.type,
      modelName: queued.action.modelName,
      code: ErrorCode.OK,
      timing: this.timing(queued, startLocalNs, endLocalNs),
      ...rest,
    };
    if (outputs) msg.outputs = outputs.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    this.send(msg, outputs?.map((t) => t.data) ?? []);
  }

  private refuse(queued: QueuedAction, code: number, message: string, startLocalNs = 0): void {
    const nowLocalNs = this.localNowNs();
    this.send({
      type: 'result',
      actionId: queued.action.actionId,
      actionType: queued.action.type,
      modelName: queued.action.modelName,
      code,
      message,
      timing: this.timing(queued, startLocalNs, nowLocalNs),
    });
  }

  private timing(queued: QueuedAction, startLocalNs: number, endLocalNs: number) {
    const toController = (localNs: number): number => localNs + this.offsetNs;
    return {
      receivedNs: toController(queued.receivedLocalNs),
      startNs: startLocalNs > 0 ? toController(startLocalNs) : 0,
      endNs: toController(endLocalNs),
      durationNs: startLocalNs > 0 ? endLocalNs - startLocalNs : 0,
      sentNs: toController(this.localNowNs()),
    };
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
