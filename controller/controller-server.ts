/**
 * The controller process's adapter around the pure `Scheduler`: two zeromq ROUTER sockets (one
 * for workers, one for clients), the timers that wake the planner, heartbeat supervision and the
 * telemetry logs. It translates messages into core calls and core decisions into messages; it
 * makes no scheduling decision itself.
 *
 * Data flows one way: submit -> core.onArrival -> core.plan -> INFER to a worker -> result ->
 * core.onResult -> response to the client. Every admitted request is remembered here until the
 * core answers it, so each client request gets exactly one response.
 */
import type { ControllerStatus } from '../shared/status-schema.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as zmq from 'zeromq';
import { monotonicNowNs } from '../shared/clock.js';
import { DEFAULT_MAX_TENSOR_BYTES, decodeMessage, encodeMessage, isProtocolError, MAX_HEADER_BYTES, unpackHeaderUnchecked } from '../shared/codec.js';
import { ErrorCode, isEscapementError } from '../shared/error-codes.js';
import type { ModelEntry } from '../shared/model-manifest.js';
import { applyConfigure, configureRefusal } from './configure.js';
import { PlanningLoop } from './planning-loop.js';
import { DEFAULT_MAX_PENDING_PER_CLIENT, takeIn } from './request-intake.js';
import { ExitControl } from './exit-control.js';
import { ZapAuthenticator } from './zap-authenticator.js';
import type { AuthorizedKeys, KeyPair } from '../shared/curve-keys.js';
import { verifyHelloProof } from '../shared/key-proof.js';
import {
  PROTOCOL_VERSION,
  type ActionResultMsg,
  type ConfigureMsg,
  type ConfigureReplyMsg,
  type EarlyExitPlan,
  type ExitFeedback,
  type ExitMode,
  type HelloMsg,
  type AnyMessage,
  type RequestStatus,
  type ResponseMsg,
  type SubmitMsg,
} from '../shared/protocol.js';
import { RateLimitedLog } from '../shared/rate-limited-log.js';
import { SerialSender } from '../shared/serial-sender.js';
import { byteLength, type Tensor } from '../shared/tensor.js';
import type { AdmissionPrediction, QueuedRequest } from './request-queue.js';
import type { ActionRecord } from './result-folding.js';
import { Scheduler, type PlannedAction, type RequestOutcome } from './scheduler.js';
import type { SchedulerConfig } from './scheduler-config.js';
import { modelSpecFromEntry } from './model-spec.js';
import { TelemetryLog } from './telemetry-log.js';
import { PredictionErrors } from './prediction-errors.js';

export interface ControllerOptions {
  host: string;
  /** Port for workers; 0 picks a free one (reported by `start()`). */
  workerPort: number;
  /** Port for clients; 0 picks a free one. */
  clientPort: number;
  models: Map<string, ModelEntry>;
  scheduler: Partial<SchedulerConfig>;
  /** Heartbeat period asked of workers. Default 200 ms. */
  heartbeatIntervalMs: number;
  /** A worker silent this long is declared dead. Default 1000 ms (5 missed heartbeats). */
  heartbeatTimeoutMs: number;
  /** Models to keep loaded on every worker. */
  preloadModels: string[];
  /** Where to write requests.csv and actions.csv; none when undefined. */
  logDir?: string;
  /**
   * How early-exit packages run: `off` (whole model), `release` (Apparate: answer at the ramp,
   * the batch runs on) or `compact` (exited requests leave the batch). Default off.
   */
  exitMode: ExitMode | 'off';
  /** Batches of exactly as many rows as requests (default true); see `plannedBatchSizes`. */
  exactBatches?: boolean;
  /** Most pending requests per client (ZeroMQ peer or HTTP address). Default 25,000. */
  maxPendingPerClient?: number;
  /** Let the ramp adjuster activate and deactivate ramps at run time (the CLI's default: on; see monitorExits). */
  adjustRamps: boolean;
  /** `static`: keep the packages' validation thresholds, never re-tune (a baseline). Default online. */
  thresholds?: 'online' | 'static';
  /** When set, `configure` needs this token (clients send it as `adminToken`). */
  adminToken?: string;
  /**
   * Refuse `configure` altogether (no admin token to check): a controller with `--keys` but no
   * `--admin-token` is secured, and any authorized client could otherwise reconfigure it.
   */
  adminLocked?: boolean;
  /**
   * CURVE: the controller's key pair and the public keys allowed to connect. Workers must be in
   * `authorizedWorkers`; clients in `authorizedClients` (when absent, the client port is plain).
   */
  curve?: { keys: KeyPair; authorizedWorkers: AuthorizedKeys; authorizedClients?: AuthorizedKeys };
  /** Where answers and action results are counted for /metrics. */
  metrics?: {
    observeAnswer(model: string, status: RequestStatus, code: number, latencyNs: number, exitRamp: number | undefined): void;
    observeAction(record: ActionRecord): void;
    observeQueue(model: string, queueNs: number): void;
  };
  log: (line: string) => void;
}

/** Where a request came from and how its one answer goes back (zeromq client, HTTP, ...). */
export interface RequestOrigin {
  /** Unique per in-flight client request id: duplicates are refused. */
  dedupeKey: string;
  /** Who sent it (a ZeroMQ peer, an HTTP address): each gets a bounded share of the pending requests. */
  clientKey: string;
  send(response: ResponseMsg, frames: Uint8Array[]): void;
}

interface PendingRequest {
  id: number;
  origin: RequestOrigin;
  clientRequestId: string;
  model: string;
  inputs: Tensor[];
  arrivalNs: number;
  deadlineNs: number;
  /** Admission's prediction (shared with the core's queued request). */
  admission?: AdmissionPrediction;
}

/** A worker's report may run this far ahead of the controller's clock (clock-sync error) before it is refused. */
const MAX_FUTURE_SKEW_NS = 1e9;
/** Largest frame either router accepts: a batch of tensors (64 MiB) or a header. ZeroMQ drops the peer beyond it. */
const MAX_FRAME_BYTES = Math.max(DEFAULT_MAX_TENSOR_BYTES, MAX_HEADER_BYTES);

interface WorkerLink {
  routingId: Buffer;
  lastSeenNs: number;
  epoch: number;
}

export class ControllerServer {
  readonly core: Scheduler;
  private readonly workerRouter: zmq.Router;
  private readonly clientRouter: zmq.Router;
  private readonly workerSender: SerialSender;
  private readonly clientSender: SerialSender;
  private readonly workers = new Map<string, WorkerLink>();
  private readonly pending = new Map<number, PendingRequest>();
  private readonly clientKeys = new Set<string>();
  /** Pending requests per `RequestOrigin.clientKey`. */
  private readonly pendingPerClient = new Map<string, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly telemetry: TelemetryLog | undefined;
  private readonly zap: ZapAuthenticator | undefined;
  /** Predicted against actual per model and stage, for status. */
  private readonly predictionErrors = new PredictionErrors();
  /** Early-exit decisions: per model its accuracy monitor and threshold tuner (exit-control.ts). */
  private readonly exits: ExitControl;
  private readonly startNs = monotonicNowNs();
  /** When to plan: soon after a change, and at the core's next wake-up (planning-loop.ts). */
  private readonly planning: PlanningLoop;
  /** The event loop's responsiveness under load (reported in status and /metrics). */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private nextRequestId = 1;
  private nextLocalId = 1;
  private closed = false;
  readonly counters = { submitted: 0, answered: 0, byStatus: {} as Record<string, number>, malformed: 0, handlerErrors: 0 };
  /** Refusals and handler failures: logged, but never more than a few lines a second per kind. */
  private readonly refusals: RateLimitedLog;

  constructor(private readonly options: ControllerOptions) {
    this.core = new Scheduler(
      [...options.models.values()].map((e) => modelSpecFromEntry(e, options.exitMode, options.exactBatches ?? true)),
      options.scheduler,
    );
    for (const name of options.preloadModels) this.core.pin(name);
    this.exits = new ExitControl(this.core, options.models, {
      exitMode: options.exitMode,
      thresholds: options.thresholds ?? 'online',
      adjustRamps: options.adjustRamps,
      exactBatches: options.exactBatches ?? true,
    });
    this.refusals = new RateLimitedLog(options.log);
    this.planning = new PlanningLoop({
      plan: (nowNs) => this.runPlan(nowNs),
      nextWakeupNs: (nowNs) => this.core.nextWakeupNs(nowNs),
      nowNs: monotonicNowNs,
      guarded: (what, handler) => this.guarded(what, handler),
    });
    const routerOptions = {
      mandatory: true,
      sendTimeout: 0,
      handover: true,
      linger: 0,
      sendHighWaterMark: 10_000,
      receiveHighWaterMark: 10_000,
      maxMessageSize: MAX_FRAME_BYTES,
    };
    const curve = options.curve;
    const secured = (domain: string) =>
      curve ? { curveServer: true, curveSecretKey: curve.keys.secretKey, curvePublicKey: curve.keys.publicKey, zapDomain: domain } : {};
    this.workerRouter = new zmq.Router({ ...routerOptions, ...secured('workers') });
    this.clientRouter = new zmq.Router({ ...routerOptions, ...(curve?.authorizedClients ? secured('clients') : {}) });
    if (curve) {
      this.zap = new ZapAuthenticator({ workers: curve.authorizedWorkers, clients: curve.authorizedClients ?? new Map() }, options.log);
    }
    this.workerSender = new SerialSender(this.workerRouter, (err, frames) => this.onWorkerSendError(err, frames));
    this.clientSender = new SerialSender(this.clientRouter, (err) => this.options.log(`client send failed: ${err.message}`));
    if (options.logDir) this.telemetry = new TelemetryLog(options.logDir, this.startNs, (message) => this.options.log(message));
  }

  async start(): Promise<{ workerUrl: string; clientUrl: string }> {
    this.loopDelay.enable();
    await this.zap?.start(); // before binding: every handshake asks it
    const bindUrl = (port: number) => `tcp://${this.options.host}:${port === 0 ? '*' : port}`;
    await this.workerRouter.bind(bindUrl(this.options.workerPort));
    await this.clientRouter.bind(bindUrl(this.options.clientPort));
    void this.readLoop(this.workerRouter, 'worker', (id, frames) => this.onWorkerFrames(id, frames));
    void this.readLoop(this.clientRouter, 'client', (id, frames) => this.onClientFrames(id, frames));
    this.timers.push(setInterval(() => this.guarded('supervision', () => this.superviseWorkers()), this.options.heartbeatIntervalMs));
    return { workerUrl: this.workerRouter.lastEndpoint!, clientUrl: this.clientRouter.lastEndpoint! };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const request of [...this.pending.values()]) {
      this.respond(request, { status: 'ERROR', code: ErrorCode.CONTROLLER_SHUTDOWN, message: 'the controller is shutting down', completeNs: monotonicNowNs() });
    }
    await new Promise((r) => setTimeout(r, 50)); // let the last answers leave
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.planning.close();
    this.workerSender.close();
    this.clientSender.close();
    this.workerRouter.close();
    this.clientRouter.close();
    this.zap?.close();
    this.loopDelay.disable();
    await this.telemetry?.close();
  }

  /**
   * Reads one router until it closes. Handling one message may fail (a bug that hostile input
   * found); that message is dropped, the requests it touched are answered, and reading goes on.
   * NOTE: never read `readable` of a router whose loop is waiting here (to serve workers ahead of
   * a burst of requests, say): reading ZMQ_EVENTS consumes the edge its file descriptor signals,
   * so the waiting receive never wakes. Tried: both workers were removed for missed heartbeats.
   */
  private async readLoop(router: zmq.Router, side: string, onFrames: (routingId: Buffer, frames: Buffer[]) => void): Promise<void> {
    try {
      for await (const [routingId, ...frames] of router) this.guarded(`${side} message`, () => onFrames(routingId!, frames));
    } catch (err) {
      if (!this.closed) this.options.log(`reader stopped: ${(err as Error).message}`);
    }
  }

  /** Runs one handler; an exception costs that one event, never the process or a request's answer. */
  private guarded(what: string, handler: () => void): void {
    try {
      handler();
    } catch (err) {
      this.counters.handlerErrors++;
      this.refusals.write('handler-error', `failed handling a ${what} (dropped): ${(err as Error).stack ?? String(err)}`);
      this.answerOrphans();
      this.planSoon();
    }
  }

  /** Answers every pending request the core no longer owns (a handler failed between the two). */
  private answerOrphans(): void {
    const tracked = this.core.trackedRequestIds();
    const nowNs = monotonicNowNs();
    for (const request of [...this.pending.values()]) {
      if (tracked.has(request.id)) continue;
      this.respond(request, {
        status: 'ERROR',
        code: ErrorCode.INTERNAL_ERROR,
        message: 'the controller failed while handling this request (see its log)',
        completeNs: nowNs,
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Workers

  private sendToWorker(routingId: Buffer, msg: AnyMessage, tensors: Uint8Array[] = []): void {
    this.workerSender.send([routingId, ...encodeMessage(msg, tensors)]);
  }

  private onWorkerFrames(routingId: Buffer, frames: Buffer[]): void {
    const nowNs = monotonicNowNs();
    let decoded;
    try {
      decoded = decodeMessage(frames);
    } catch (err) {
      this.refuseWorkerMessage(routingId, isProtocolError(err) ? err.message : String(err));
      return;
    }
    const { header: msg, tensors } = decoded;
    if (msg.type === 'clock_ping') {
      this.sendToWorker(routingId, { type: 'clock_pong', seq: msg.seq, t0Ns: msg.t0Ns, t1Ns: nowNs, t2Ns: monotonicNowNs() });
      return;
    }
    if (msg.type === 'hello') {
      this.onHello(routingId, msg, nowNs);
      return;
    }
    const workerId = routingId.toString();
    const link = this.workers.get(workerId);
    if (!link) {
      // Only heartbeats carry the worker's epoch; they arrive every 200 ms, so answering them suffices.
      if (msg.type === 'heartbeat')
        this.sendToWorker(routingId, { type: 'reregister', reason: 'unknown worker (controller restarted or declared it dead)', epoch: msg.epoch });
      return;
    }
    if (msg.type === 'heartbeat' && msg.epoch !== link.epoch) return; // from before its latest hello
    if (msg.type === 'result') {
      const refusal = resultTimesRefusal(msg, nowNs) ?? this.core.resultMismatch(workerId, msg);
      if (refusal) return this.refuseWorkerMessage(routingId, refusal);
    }
    link.lastSeenNs = nowNs;
    if (msg.type === 'result') this.onResult(workerId, msg, tensors, nowNs);
    else if (msg.type === 'exit') this.deliver(this.core.onExit(workerId, msg, nowNs), tensors);
  }

  /** A message that cannot be true costs its sender a logged refusal and nothing else. */
  private refuseWorkerMessage(routingId: Buffer, reason: string): void {
    this.counters.malformed++;
    this.refusals.write('worker-refusal', `refused a message from worker '${routingId.toString().slice(0, 64)}': ${reason}`);
  }

  /**
   * With keys that bind ids: why this hello may not register as its id (undefined when it may).
   * An authorized key gets through ZAP whatever id its worker claims; the proof ties it to one.
   */
  private keyRefusal(hello: HelloMsg): string | undefined {
    const curve = this.options.curve;
    if (!curve || ![...curve.authorizedWorkers.values()].some((id) => id !== undefined)) return undefined;
    const bound = [...curve.authorizedWorkers].find(([, id]) => id === hello.workerId)?.[0];
    if (!bound) return `no key is bound to worker id '${hello.workerId.slice(0, 64)}'`;
    return verifyHelloProof(curve.keys, bound, hello.workerId, hello.keyProof)
      ? undefined
      : `it does not hold the key bound to '${hello.workerId.slice(0, 64)}'`;
  }

  private onHello(routingId: Buffer, hello: HelloMsg, nowNs: number): void {
    const { workerId, memoryBudgetBytes, device, epoch } = hello;
    if (routingId.toString() !== workerId) {
      this.options.log(`refused hello: routing id '${routingId.toString()}' differs from worker id '${workerId}'`);
      return;
    }
    const keyRefusal = this.keyRefusal(hello);
    if (keyRefusal) {
      this.refusals.write('hello-refusal', `refused hello from '${workerId.slice(0, 64)}': ${keyRefusal}`);
      return;
    }
    if (this.core.hasWorker(workerId)) {
      // Same id again: the worker restarted. Whatever the old incarnation held is gone.
      this.deliver(this.core.removeWorker(workerId, nowNs));
    }
    this.core.addWorker(workerId, memoryBudgetBytes);
    this.workers.set(workerId, { routingId, lastSeenNs: nowNs, epoch });
    this.options.log(`worker ${workerId} registered (${device}, ${(memoryBudgetBytes / 2 ** 20).toFixed(0)} MiB)`);
    this.sendToWorker(routingId, { type: 'hello_ack', v: PROTOCOL_VERSION, workerId, heartbeatIntervalMs: this.options.heartbeatIntervalMs, epoch });
    this.planSoon();
  }

  private onResult(workerId: string, msg: ActionResultMsg, tensors: Tensor[], nowNs: number): void {
    const fold = this.core.onResult(workerId, msg, nowNs);
    if (fold.record) {
      this.telemetry?.action(fold.record, nowNs);
      this.options.metrics?.observeAction(fold.record);
      const r = fold.record;
      if (r.actionType === 'infer' && r.code === ErrorCode.OK) {
        this.predictionErrors.observe({
          model: r.model,
          expectedDurationNs: r.expectedDurationNs,
          actualDurationNs: r.actualDurationNs,
          startLatenessNs: r.actualStartNs - r.expectedStartNs,
          expectedStages: r.expectedStages,
          stages: r.stages,
        });
      }
    }
    if (fold.exitPlan && msg.feedback) this.monitorExits(msg.modelName, fold.exitPlan, msg.feedback);
    // An early-exit model's batch run whole (release off the chain, or before a ramp set is ready): full answers all.
    else if (msg.actionType === 'infer' && msg.code === ErrorCode.OK)
      this.exits.countFullAnswers(msg.modelName, fold.outcomes.filter((o) => o.batchIndex !== undefined).length);
    if (msg.code !== ErrorCode.OK && msg.actionType !== 'infer')
      this.options.log(`${msg.actionType} of ${msg.modelName} on ${workerId} failed: ${msg.message ?? msg.code}`);
    this.deliver(fold.outcomes, tensors);
    this.planSoon();
  }

  /** Feeds accuracy monitoring (exit-control.ts decides); logs what changed. */
  private monitorExits(model: string, plan: EarlyExitPlan, feedback: ExitFeedback): void {
    const { thresholds: change, ramps: rampChange } = this.exits.observe(model, plan, feedback);
    const fmt = (ts: number[]) => ts.map((t) => (t > 1 ? 'off' : t.toFixed(3))).join(' ');
    if (change) {
      this.options.log(
        `${model}: thresholds [${fmt(change.before)}] -> [${fmt(change.after)}] (${change.reason}; ${change.numSamples} samples, ` +
          `disagreement bound ${(100 * change.disagreementUpperBound).toFixed(2)} %, expected saving ${change.expectedSavingMs.toFixed(3)} ms)`,
      );
      this.telemetry?.thresholds(change, monotonicNowNs());
    }
    if (rampChange) {
      this.options.log(
        `${model}: ramps [${rampChange.before.join(' ')}] -> [${rampChange.after.join(' ')}] (${rampChange.reason}); thresholds [${fmt(rampChange.thresholds)}]`,
      );
      this.telemetry?.thresholds(
        {
          model,
          reason: `ramps: ${rampChange.reason}`,
          before: rampChange.before,
          after: rampChange.after,
          expectedSavingMs: 0,
          disagreementUpperBound: 0,
          numSamples: 0,
        },
        monotonicNowNs(),
      );
    }
  }

  private removeWorker(workerId: string, reason: string): void {
    if (!this.workers.delete(workerId)) return;
    this.options.log(`worker ${workerId} removed: ${reason}`);
    this.deliver(this.core.removeWorker(workerId, monotonicNowNs()));
    this.planSoon();
  }

  private superviseWorkers(): void {
    const nowNs = monotonicNowNs();
    for (const [workerId, link] of this.workers) {
      const silentMs = (nowNs - link.lastSeenNs) / 1e6;
      if (silentMs > this.options.heartbeatTimeoutMs) this.removeWorker(workerId, `no heartbeat for ${silentMs.toFixed(0)} ms`);
    }
  }

  private onWorkerSendError(err: Error & { code?: string }, frames: Buffer[]): void {
    const workerId = frames[0]?.toString() ?? '?';
    this.removeWorker(workerId, `unreachable (${err.code ?? err.message})`);
  }

  private sendAction(planned: PlannedAction): void {
    const link = this.workers.get(planned.workerId)!;
    const action = planned.action;
    for (const r of planned.requests) this.options.metrics?.observeQueue(r.model, action.expectedStartNs - r.arrivalNs);
    if (action.type !== 'infer') {
      this.sendToWorker(link.routingId, action);
      return;
    }
    // Assemble each input as [batchSize, ...] rows: the requests' rows, then zero padding. A text
    // request's shorter row is zero-padded at its end (token id 0 is [PAD], mask 0 hides it).
    const frames = action.inputs.map((meta) => {
      const batch = Buffer.alloc(byteLength(meta));
      const rowBytes = batch.byteLength / action.batchSize;
      planned.requests.forEach((r, row) => {
        const tensor = this.pending.get(r.id)?.inputs.find((t) => t.name === meta.name);
        if (tensor) batch.set(tensor.data.subarray(0, rowBytes), row * rowBytes);
      });
      return batch;
    });
    this.sendToWorker(link.routingId, action, frames);
  }

  // -------------------------------------------------------------------------------------------
  // Planning

  private planSoon(): void {
    if (!this.closed) this.planning.soon();
  }

  /** Plans at `nowNs` and carries the plan out: answers to deliver, actions to send. */
  private runPlan(nowNs: number): void {
    const { actions, outcomes } = this.core.plan(nowNs);
    this.deliver(outcomes);
    for (const planned of actions) this.sendAction(planned);
  }

  // -------------------------------------------------------------------------------------------
  // Clients

  private onClientFrames(routingId: Buffer, frames: Buffer[]): void {
    const nowNs = monotonicNowNs();
    let decoded;
    try {
      decoded = decodeMessage(frames);
    } catch (err) {
      this.counters.malformed++;
      const code = isEscapementError(err) ? err.code : ErrorCode.MALFORMED_MESSAGE;
      const guess = guessQuery(frames[0]);
      // A malformed configure is answered as a configure (its sender waits for that reply).
      if (guess.configureQueryId !== undefined)
        this.clientSender.send([
          routingId,
          ...encodeMessage({ type: 'configure_reply', queryId: guess.configureQueryId, code, message: (err as Error).message }),
        ]);
      else this.replyError(routingId, guess.requestId, code, (err as Error).message, nowNs);
      return;
    }
    const { header: msg, tensors } = decoded;
    switch (msg.type) {
      case 'submit':
        return this.onSubmit(routingId, msg, tensors, nowNs);
      case 'clock_ping':
        this.clientSender.send([routingId, ...encodeMessage({ type: 'clock_pong', seq: msg.seq, t0Ns: msg.t0Ns, t1Ns: nowNs, t2Ns: monotonicNowNs() })]);
        return;
      case 'configure':
        this.clientSender.send([routingId, ...encodeMessage(this.configure(msg))]);
        return;
      case 'status_query':
        this.clientSender.send([routingId, ...encodeMessage({ type: 'status_reply', queryId: msg.queryId, status: this.status(nowNs) })]);
        return;
      default:
        this.counters.malformed++;
        this.replyError(routingId, '', ErrorCode.UNKNOWN_MESSAGE_TYPE, `clients may not send '${msg.type}'`, nowNs);
    }
  }

  private replyError(routingId: Buffer, requestId: string, code: number, message: string, nowNs: number): void {
    const response: ResponseMsg = { type: 'response', requestId, status: 'REJECTED', code, message, arrivalNs: nowNs, deadlineNs: 0, completeNs: nowNs };
    this.clientSender.send([routingId, ...encodeMessage(response)]);
  }

  private onSubmit(routingId: Buffer, msg: SubmitMsg, tensors: Tensor[], nowNs: number): void {
    const origin: RequestOrigin = {
      dedupeKey: `zmq/${routingId.toString('hex')}/${msg.requestId}`,
      clientKey: `zmq/${routingId.toString('hex')}`,
      send: (response, frames) => {
        if (!this.clientSender.send([routingId, ...encodeMessage(response, frames)])) {
          this.options.log(`could not queue the answer to request ${response.requestId}: client send queue full`);
        }
      },
    };
    this.accept(origin, msg, tensors, nowNs);
  }

  /**
   * Submits a request from inside the process (the HTTP front door); resolves with its one final
   * answer and the output tensors.
   */
  submitLocal(msg: SubmitMsg, tensors: Tensor[], clientKey = 'local'): Promise<{ response: ResponseMsg; outputs: Tensor[] }> {
    return new Promise((resolve) => {
      const origin: RequestOrigin = {
        dedupeKey: `local/${this.nextLocalId++}`,
        clientKey,
        send: (response, frames) => resolve({ response, outputs: (response.outputs ?? []).map((m, i) => ({ ...m, data: frames[i]! })) }),
      };
      this.accept(origin, msg, tensors, monotonicNowNs());
    });
  }

  /** Checks a submit and hands it to the core; every path ends in exactly one `origin.send`. */
  private accept(origin: RequestOrigin, msg: SubmitMsg, tensors: Tensor[], nowNs: number): void {
    this.counters.submitted++;
    const numPending = this.pendingPerClient.get(origin.clientKey) ?? 0;
    const client = {
      duplicate: this.clientKeys.has(origin.dedupeKey),
      numPending,
      maxPending: this.options.maxPendingPerClient ?? DEFAULT_MAX_PENDING_PER_CLIENT,
    };
    const intake = takeIn(msg, tensors, nowNs, client, this.core);
    if ('refusal' in intake) return this.reject(origin, msg.requestId, intake.refusal.code, intake.refusal.message, nowNs);
    const { deadlineNs } = intake;
    const request: PendingRequest = {
      id: this.nextRequestId++,
      origin,
      clientRequestId: msg.requestId,
      model: msg.model,
      inputs: tensors,
      arrivalNs: nowNs,
      deadlineNs,
    };
    this.pending.set(request.id, request);
    this.clientKeys.add(origin.dedupeKey);
    this.pendingPerClient.set(origin.clientKey, numPending + 1);
    const queued: QueuedRequest = {
      id: request.id,
      model: msg.model,
      arrivalNs: nowNs,
      deadlineNs,
      ...(intake.seqBucket ? { seqLength: intake.seqBucket } : {}),
    };
    const outcome = this.core.onArrival(queued, nowNs);
    if (queued.admission) request.admission = queued.admission;
    if (outcome) this.deliver([outcome]);
    else this.planSoon();
  }

  private reject(origin: RequestOrigin, requestId: string, code: number, message: string, nowNs: number, model = ''): void {
    this.countStatus('REJECTED');
    this.options.metrics?.observeAnswer(model, 'REJECTED', code, 0, undefined);
    origin.send({ type: 'response', requestId, status: 'REJECTED', code, message, arrivalNs: nowNs, deadlineNs: 0, completeNs: nowNs }, []);
  }

  private countStatus(status: RequestStatus): void {
    this.counters.answered++;
    this.counters.byStatus[status] = (this.counters.byStatus[status] ?? 0) + 1;
  }

  /** Sends the core's answers; INFER outputs are sliced per request from the result's tensors. */
  private deliver(outcomes: RequestOutcome[], outputs: Tensor[] = []): void {
    for (const outcome of outcomes) {
      const request = this.pending.get(outcome.requestId);
      if (request) this.respond(request, outcome, outputs);
    }
  }

  private respond(request: PendingRequest, outcome: Omit<RequestOutcome, 'requestId'>, outputs: Tensor[] = []): void {
    this.pending.delete(request.id);
    this.clientKeys.delete(request.origin.dedupeKey);
    const left = (this.pendingPerClient.get(request.origin.clientKey) ?? 1) - 1;
    if (left > 0) this.pendingPerClient.set(request.origin.clientKey, left);
    else this.pendingPerClient.delete(request.origin.clientKey);
    const response: ResponseMsg = {
      type: 'response',
      requestId: request.clientRequestId,
      status: outcome.status,
      code: outcome.code,
      arrivalNs: request.arrivalNs,
      deadlineNs: request.deadlineNs,
      completeNs: outcome.completeNs,
    };
    if (outcome.message !== undefined) response.message = outcome.message;
    if (outcome.workerId !== undefined) response.workerId = outcome.workerId;
    if (outcome.batchSize !== undefined) response.batchSize = outcome.batchSize;
    if (outcome.early !== undefined) response.early = outcome.early;
    if (outcome.exitRamp !== undefined) response.exitRamp = outcome.exitRamp;
    if (outcome.confidence !== undefined) response.confidence = outcome.confidence;
    if (outcome.prediction !== undefined) response.prediction = outcome.prediction;
    const frames: Uint8Array[] = [];
    if (outcome.batchIndex !== undefined && outputs.length > 0) {
      response.outputs = [];
      for (const t of outputs) {
        const rowBytes = t.data.byteLength / t.shape[0]!;
        response.outputs.push({ name: t.name, dtype: t.dtype, shape: [1, ...t.shape.slice(1)] });
        frames.push(t.data.subarray(outcome.batchIndex * rowBytes, (outcome.batchIndex + 1) * rowBytes));
      }
    }
    this.countStatus(outcome.status);
    this.options.metrics?.observeAnswer(
      request.model,
      outcome.status,
      outcome.code,
      outcome.completeNs - request.arrivalNs,
      outcome.early ? outcome.exitRamp : undefined,
    );
    const stats = this.statsOf(request.model);
    if (outcome.status === 'OK') {
      stats.success++;
      stats.successNs += outcome.completeNs - request.arrivalNs;
      if (outcome.early) stats.early++;
    } else stats.failure++;
    this.telemetry?.request({
      requestId: request.id,
      model: request.model,
      status: outcome.status,
      code: outcome.code,
      arrivalNs: request.arrivalNs,
      deadlineNs: request.deadlineNs,
      completeNs: outcome.completeNs,
      ...(request.admission ? { predictedCompleteNs: request.admission.predictedCompleteNs } : {}),
      ...(outcome.workerId ? { workerId: outcome.workerId } : {}),
      ...(outcome.batchSize ? { batchSize: outcome.batchSize } : {}),
      ...(outcome.actionId !== undefined ? { actionId: outcome.actionId } : {}),
    });
    request.origin.send(response, frames);
  }

  // -------------------------------------------------------------------------------------------
  // Model repository (the HTTP front door's repository extension)

  private readonly perModel = new Map<string, { success: number; failure: number; early: number; successNs: number }>();

  private statsOf(model: string) {
    let stats = this.perModel.get(model);
    if (!stats) {
      stats = { success: 0, failure: 0, early: 0, successNs: 0 };
      this.perModel.set(model, stats);
    }
    return stats;
  }

  /** Per-model counts for the statistics extension. */
  modelStats(model: string): { success: number; failure: number; early: number; successNs: number } {
    return { ...this.statsOf(model) };
  }

  modelNames(): string[] {
    return [...this.options.models.keys()];
  }

  modelEntry(name: string): ModelEntry | undefined {
    return this.options.models.get(name);
  }

  isReady(): boolean {
    return this.workers.size > 0;
  }

  modelReady(name: string): boolean {
    return !this.core.isOutOfService(name) && this.core.modelState(name) === 'ready';
  }

  repositoryIndex(): { name: string; version: string; state: string; reason: string }[] {
    return this.modelNames().map((name) => {
      const state = this.core.isOutOfService(name)
        ? 'UNAVAILABLE'
        : { ready: 'READY', loading: 'LOADING', unavailable: 'UNAVAILABLE' }[this.core.modelState(name)];
      return { name, version: '1', state, reason: this.core.isOutOfService(name) ? 'unloaded' : '' };
    });
  }

  loadModel(name: string): void {
    this.core.requestLoad(name);
    this.planSoon();
  }

  unloadModel(name: string): void {
    this.core.requestUnload(name);
    this.planSoon();
  }

  /** Applies a configure message: batching policy and the early-exit mode of every package. */
  private configure(msg: ConfigureMsg): ConfigureReplyMsg {
    const reply = (code: number, message?: string): ConfigureReplyMsg => ({
      type: 'configure_reply',
      queryId: msg.queryId,
      code,
      ...(message ? { message } : {}),
    });
    const refusal = configureRefusal(msg, this.options);
    if (refusal) {
      if (refusal.logLine) this.refusals.write('configure-refusal', refusal.logLine);
      return reply(refusal.code, refusal.message);
    }
    const applied = applyConfigure(msg, this.core, this.exits);
    if (applied.refusal) return reply(ErrorCode.INVALID_INPUT, applied.refusal);
    if (applied.fixed) this.telemetry?.thresholds(applied.fixed, monotonicNowNs());
    const config = this.core.config;
    const parts = [
      `policy ${config.policy}`,
      `batch timeout ${(config.batchTimeoutNs / 1e6).toFixed(1)} ms`,
      `fifo queue bound ${config.maxEnqueuedBatches} batches`,
      ...(msg.exitMode ? [`exit mode ${msg.exitMode}`] : []),
      ...(msg.thresholds ? [`thresholds ${msg.thresholds}`] : []),
      ...(msg.adjustRamps !== undefined ? [`ramp adjustment ${msg.adjustRamps ? 'on' : 'off'}`] : []),
      ...(msg.fixedThresholds
        ? [`${msg.fixedThresholds.model} thresholds fixed at [${msg.fixedThresholds.thresholds.map((t) => (t > 1 ? 'off' : t.toFixed(3))).join(' ')}]`]
        : []),
    ];
    this.options.log(`configured: ${parts.join(', ')}`);
    return reply(ErrorCode.OK);
  }

  status(nowNs = monotonicNowNs()): ControllerStatus {
    return {
      uptimeMs: (nowNs - this.startNs) / 1e6,
      numPending: this.pending.size,
      eventLoopDelayMs: { p50: this.loopDelay.percentile(50) / 1e6, p99: this.loopDelay.percentile(99) / 1e6, max: this.loopDelay.max / 1e6 },
      memoryRssBytes: process.memoryUsage().rss,
      counters: this.counters,
      adjustRamps: this.exits.adjustRamps,
      ...(this.telemetry ? { telemetry: { stoppedBecause: this.telemetry.stoppedBecause ?? null, droppedRows: this.telemetry.droppedRows } } : {}),
      exits: this.exits.stats(),
      /** Predicted against actual INFER durations, per model and stage (recent INFERs). */
      predictions: this.predictionErrors.summary(),
      ...this.core.snapshot(nowNs),
    };
  }
}

/**
 * Why a result's times cannot be true (undefined when they can): every time a worker reports lies
 * before the controller received the result, give or take the clock-sync error.
 */
function resultTimesRefusal(msg: ActionResultMsg, nowNs: number): string | undefined {
  const latestNs = nowNs + MAX_FUTURE_SKEW_NS;
  for (const key of ['receivedNs', 'startNs', 'endNs', 'sentNs'] as const) {
    if (msg.timing[key] > latestNs) return `result.timing.${key} lies ${((msg.timing[key] - nowNs) / 1e9).toFixed(1)} s in the future`;
  }
  return undefined;
}

/** The absolute deadline of a submit, or a message saying what is wrong with it. */
/**
 * Best effort, so the client can match the error: the requestId of an undecodable submit, or the
 * queryId of an undecodable configure.
 */
function guessQuery(header: Buffer | undefined): { requestId: string; configureQueryId?: string } {
  const value = (header ? unpackHeaderUnchecked(header) : undefined) as { type?: unknown; requestId?: unknown; queryId?: unknown } | undefined;
  const requestId = typeof value?.requestId === 'string' ? value.requestId.slice(0, 256) : '';
  return value?.type === 'configure' && typeof value.queryId === 'string' ? { requestId, configureQueryId: value.queryId.slice(0, 256) } : { requestId };
}
