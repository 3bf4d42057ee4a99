/**
 * The controller process's adapter around the pure `Scheduler`: it wires the worker links
 * (`worker-link.ts`), the client gateway (`client-gateway.ts`) and the HTTP front's entry
 * (`submitLocal`) to the core, wakes the planner (`planning-loop.ts`), and keeps every request
 * taken in until the core answers it (`pending-requests.ts`), so each gets exactly one answer. It
 * makes no scheduling decision itself.
 *
 * Data flows one way: submit -> core.onArrival -> core.plan -> INFER to a worker -> result ->
 * core.onResult -> response to the client. The clock is injected (`nowNs`), and the sockets bind
 * any ZeroMQ endpoint (`inproc://` in tests with a fake worker, `tcp://` otherwise).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as zmq from 'zeromq';
import { monotonicNowNs } from '../shared/clock.js';
import { DEFAULT_MAX_TENSOR_BYTES, MAX_HEADER_BYTES } from '../shared/codec.js';
import { ErrorCode } from '../shared/error-codes.js';
import type { ModelEntry } from '../shared/model-manifest.js';
import type { ActionResultMsg, ConfigureMsg, ConfigureReplyMsg, RequestStatus, ResponseMsg, SubmitMsg } from '../shared/protocol.js';
import { RateLimitedLog } from '../shared/rate-limited-log.js';
import type { ControllerStatus } from '../shared/status-schema.js';
import { byteLength, type Tensor } from '../shared/tensor.js';
import { ClientGateway, type RequestOrigin } from './client-gateway.js';
import { applyConfigure, configureRefusal, describeConfiguration } from './configure.js';
import { ExitControl } from './exit-control.js';
import { TunerThread } from './tuner-thread.js';
import { ModelRepository, type ModelStats } from './model-repository.js';
import { modelSpecFromEntry } from './model-spec.js';
import { answerFor, PendingRequests, type PendingRequest } from './pending-requests.js';
import type { ControllerOptions } from './controller-options.js';
import { NODE_TIMERS, PlanningLoop, type LoopTimers } from './planning-loop.js';
import { PredictionErrors } from './prediction-errors.js';
import { ResultFeedback } from './result-feedback.js';
import { DEFAULT_MAX_PENDING_PER_CLIENT, takeIn } from './request-intake.js';
import type { QueuedRequest } from './request-queue.js';
import { Scheduler } from './scheduler.js';
import type { PlannedAction, RequestOutcome } from './core-outputs.js';
import { TelemetryLog } from './telemetry-log.js';
import { WorkerLinks } from './worker-link.js';
import { ZapAuthenticator } from './zap-authenticator.js';

/** Largest frame either router accepts: a batch of tensors (64 MiB) or a header. ZeroMQ drops the peer beyond it. */
const MAX_FRAME_BYTES = Math.max(DEFAULT_MAX_TENSOR_BYTES, MAX_HEADER_BYTES);

export class ControllerServer {
  readonly core: Scheduler;
  private readonly workers: WorkerLinks;
  private readonly clients: ClientGateway;
  private readonly pending = new PendingRequests();
  private readonly repository: ModelRepository;
  private readonly telemetry: TelemetryLog | undefined;
  private readonly zap: ZapAuthenticator | undefined;
  /** Predicted against actual per model and stage, for status. */
  private readonly predictionErrors = new PredictionErrors();
  /** What results feed besides the answers: logs, metrics, prediction errors, exit monitors (result-feedback.ts). */
  private readonly feedback: ResultFeedback;
  /** Early-exit decisions: per model its accuracy monitor and threshold tuner (exit-control.ts). */
  private readonly exits: ExitControl;
  /** Where the monitors' threshold search runs: a thread of its own (tuner-thread.ts). */
  private readonly tunerThread = new TunerThread();
  private readonly nowNs: () => number;
  private readonly timers: LoopTimers;
  private readonly startNs: number;
  /** When to plan: soon after a change, and at the core's next wake-up (planning-loop.ts). */
  private readonly planning: PlanningLoop;
  /** The event loop's responsiveness under load (reported in status and /metrics). */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private supervision: unknown;
  private nextLocalId = 1;
  private closed = false;
  readonly counters = { submitted: 0, answered: 0, byStatus: {} as Record<string, number>, malformed: 0, handlerErrors: 0 };
  /** Refusals and handler failures: logged, but never more than a few lines a second per kind. */
  private readonly refusals: RateLimitedLog;

  constructor(private readonly options: ControllerOptions) {
    this.nowNs = options.nowNs ?? monotonicNowNs;
    this.timers = options.timers ?? NODE_TIMERS;
    this.startNs = this.nowNs();
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
      ...(options.tuningBudgetShare !== undefined ? { budgetShare: options.tuningBudgetShare } : {}),
      deferSearch: true,
    });
    if (this.tunerThread.inProcessBecause) options.log(`threshold search runs in-process: ${this.tunerThread.inProcessBecause}`);
    this.tunerThread.onFallback = (reason) => options.log(`threshold search moves in-process: ${reason}`);
    this.repository = new ModelRepository(options.models, this.core);
    this.refusals = new RateLimitedLog(options.log);
    this.planning = new PlanningLoop({
      plan: (nowNs) => this.runPlan(nowNs),
      nextWakeupNs: (nowNs) => this.core.nextWakeupNs(nowNs),
      nowNs: this.nowNs,
      guarded: (what, handler) => this.guarded(what, handler),
      timers: this.timers,
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
    if (curve) {
      this.zap = new ZapAuthenticator({ workers: curve.authorizedWorkers, clients: curve.authorizedClients ?? new Map() }, options.log);
    }
    this.workers = new WorkerLinks(
      new zmq.Router({ ...routerOptions, ...secured('workers') }),
      {
        registered: (workerId, memoryBudgetBytes, nowNs) => {
          // Same id again: the worker restarted. Whatever the old incarnation held is gone.
          if (this.core.hasWorker(workerId)) this.deliver(this.core.removeWorker(workerId, nowNs));
          this.core.addWorker(workerId, memoryBudgetBytes);
          this.planSoon();
        },
        removed: (workerId) => {
          this.deliver(this.core.removeWorker(workerId, this.nowNs()));
          this.planSoon();
        },
        resultMismatch: (workerId, msg) => this.core.resultMismatch(workerId, msg),
        result: (workerId, msg, tensors, nowNs) => this.onResult(workerId, msg, tensors, nowNs),
        exit: (workerId, msg, tensors, nowNs) => this.deliver(this.core.onExit(workerId, msg, nowNs), tensors),
        refused: () => this.counters.malformed++,
      },
      {
        heartbeatIntervalMs: options.heartbeatIntervalMs,
        heartbeatTimeoutMs: options.heartbeatTimeoutMs,
        ...(curve ? { curve } : {}),
        nowNs: this.nowNs,
        log: options.log,
        refusals: this.refusals,
      },
    );
    this.clients = new ClientGateway(
      new zmq.Router({ ...routerOptions, ...(curve?.authorizedClients ? secured('clients') : {}) }),
      {
        submit: (origin, msg, tensors, nowNs) => this.accept(origin, msg, tensors, nowNs),
        configure: (msg) => this.configure(msg),
        status: (nowNs) => this.status(nowNs),
        refused: () => this.counters.malformed++,
      },
      this.nowNs,
      options.log,
    );
    if (options.logDir) this.telemetry = new TelemetryLog(options.logDir, this.startNs, (message) => this.options.log(message));
    this.feedback = new ResultFeedback({
      exits: this.exits,
      predictionErrors: this.predictionErrors,
      ...(this.telemetry ? { telemetry: this.telemetry } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      nowNs: this.nowNs,
      log: options.log,
      runSearch: (jobs, done) => this.tunerThread.run(jobs, done),
      guarded: (what, handler) => this.guarded(what, handler),
      planSoon: () => this.planSoon(),
    });
  }

  async start(): Promise<{ workerUrl: string; clientUrl: string }> {
    this.loopDelay.enable();
    await this.zap?.start(); // before binding: every handshake asks it
    const bindUrl = (port: number) => `tcp://${this.options.host}:${port === 0 ? '*' : port}`;
    await this.workers.router.bind(this.options.endpoints?.workers ?? bindUrl(this.options.workerPort));
    await this.clients.router.bind(this.options.endpoints?.clients ?? bindUrl(this.options.clientPort));
    void this.readLoop(this.workers.router, 'worker', (id, frames) => this.workers.onFrames(id, frames));
    void this.readLoop(this.clients.router, 'client', (id, frames) => this.clients.onFrames(id, frames));
    this.superviseEvery(this.options.heartbeatIntervalMs);
    return { workerUrl: this.workers.router.lastEndpoint!, clientUrl: this.clients.router.lastEndpoint! };
  }

  private superviseEvery(periodMs: number): void {
    this.supervision = this.timers.after(() => {
      if (this.closed) return;
      this.guarded('supervision', () => this.workers.supervise());
      this.superviseEvery(periodMs);
    }, periodMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const request of this.pending.all()) {
      this.respond(request, { status: 'ERROR', code: ErrorCode.CONTROLLER_SHUTDOWN, message: 'the controller is shutting down', completeNs: this.nowNs() });
    }
    await new Promise((r) => setTimeout(r, 50)); // let the last answers leave
    this.closed = true;
    this.timers.cancel(this.supervision);
    this.planning.close();
    this.workers.close();
    this.clients.close();
    this.zap?.close();
    this.loopDelay.disable();
    await this.tunerThread.close();
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
    const nowNs = this.nowNs();
    for (const request of this.pending.all()) {
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
  // Workers' results

  private onResult(workerId: string, msg: ActionResultMsg, tensors: Tensor[], nowNs: number): void {
    const fold = this.core.onResult(workerId, msg, nowNs);
    this.feedback.fold(workerId, msg, fold, nowNs);
    this.deliver(fold.outcomes, tensors);
    this.planSoon();
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

  private sendAction(planned: PlannedAction): void {
    const action = planned.action;
    for (const r of planned.requests) this.options.metrics?.observeQueue(r.model, action.expectedStartNs - r.arrivalNs);
    if (action.type !== 'infer') return this.workers.send(planned.workerId, action);
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
    this.workers.send(planned.workerId, action, frames);
  }

  // -------------------------------------------------------------------------------------------
  // Requests

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
      this.accept(origin, msg, tensors, this.nowNs());
    });
  }

  /** Checks a submit and hands it to the core; every path ends in exactly one `origin.send`. */
  private accept(origin: RequestOrigin, msg: SubmitMsg, tensors: Tensor[], nowNs: number): void {
    this.counters.submitted++;
    const client = {
      duplicate: this.pending.isDuplicate(origin),
      numPending: this.pending.numPendingOf(origin),
      maxPending: this.options.maxPendingPerClient ?? DEFAULT_MAX_PENDING_PER_CLIENT,
    };
    const intake = takeIn(msg, tensors, nowNs, client, this.core);
    if ('refusal' in intake) return this.reject(origin, msg.requestId, intake.refusal.code, intake.refusal.message, nowNs);
    const request = this.pending.add(origin, msg, tensors, nowNs, intake.deadlineNs);
    const queued: QueuedRequest = {
      id: request.id,
      model: msg.model,
      arrivalNs: nowNs,
      deadlineNs: intake.deadlineNs,
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
    this.pending.take(request);
    const { response, frames } = answerFor(request, outcome, outputs);
    const latencyNs = outcome.completeNs - request.arrivalNs;
    this.countStatus(outcome.status);
    this.options.metrics?.observeAnswer(request.model, outcome.status, outcome.code, latencyNs, outcome.early ? outcome.exitRamp : undefined);
    this.repository.record(request.model, outcome.status, outcome.early === true, latencyNs);
    this.telemetry?.request({
      requestId: request.id,
      model: request.model,
      status: outcome.status,
      code: outcome.code,
      arrivalNs: request.arrivalNs,
      deadlineNs: request.deadlineNs,
      completeNs: outcome.completeNs,
      ...(request.admission ? { predictedCompleteNs: request.admission.predictedCompleteNs, rowsAhead: request.admission.rowsAhead } : {}),
      ...(outcome.workerId ? { workerId: outcome.workerId } : {}),
      ...(outcome.batchSize ? { batchSize: outcome.batchSize } : {}),
      ...(outcome.actionId !== undefined ? { actionId: outcome.actionId } : {}),
    });
    request.origin.send(response, frames);
  }

  // -------------------------------------------------------------------------------------------
  // Model repository (the HTTP front door's repository and statistics extensions)

  /** Per-model counts for the statistics extension. */
  modelStats(model: string): ModelStats {
    return this.repository.statsFor(model);
  }

  modelNames(): string[] {
    return this.repository.names();
  }

  modelEntry(name: string): ModelEntry | undefined {
    return this.repository.entry(name);
  }

  isReady(): boolean {
    return this.workers.size > 0;
  }

  modelReady(name: string): boolean {
    return this.repository.isReady(name);
  }

  repositoryIndex(): { name: string; version: string; state: string; reason: string }[] {
    return this.repository.index();
  }

  loadModel(name: string): void {
    this.core.requestLoad(name);
    this.planSoon();
  }

  unloadModel(name: string): void {
    this.core.requestUnload(name);
    this.planSoon();
  }

  // -------------------------------------------------------------------------------------------
  // Operators: configure and status

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
    if (applied.fixed) this.telemetry?.thresholds(applied.fixed, this.nowNs());
    this.options.log(`configured: ${describeConfiguration(msg, this.core.config)}`);
    return reply(ErrorCode.OK);
  }

  status(nowNs = this.nowNs()): ControllerStatus {
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
