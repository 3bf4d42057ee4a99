/**
 * Every message that crosses a process boundary. Both the controller and the workers (and the
 * client library) import this file; nothing else is shared between them.
 *
 * Wire layout (see `codec.ts`): frame 0 is a msgpack header (one of the interfaces below), and
 * frames 1..n are raw tensor bytes in the order the header lists them (`inputs` or `outputs`).
 * All times are nanoseconds on the controller's clock (`shared/clock.ts`) unless a field says
 * otherwise.
 */
import type { TensorMeta } from './tensor.js';

export const PROTOCOL_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// Controller <-> worker

/** Worker -> controller: register (or re-register after a controller restart). */
export interface HelloMsg {
  type: 'hello';
  v: number;
  workerId: string;
  /** `cpu`, `cuda:N`, `webgpu`, or `simulated`. */
  device: string;
  memoryBudgetBytes: number;
  pid: number;
  hostname: string;
  /** Increases with every registration attempt of this worker process. */
  epoch: number;
  /** With CURVE keys: proof that it holds the key bound to `workerId` (shared/key-proof.ts). */
  keyProof?: string;
}

/** Controller -> worker: registration accepted. */
export interface HelloAckMsg {
  type: 'hello_ack';
  v: number;
  workerId: string;
  /** How often the controller expects a heartbeat. */
  heartbeatIntervalMs: number;
  /** The registration being acknowledged. */
  epoch: number;
}

/** Controller -> peer: the controller does not know you (it restarted, or declared you dead). */
export interface ReregisterMsg {
  type: 'reregister';
  reason: string;
  /**
   * The epoch of the heartbeat that was not recognised. A worker ignores a reregister for an
   * older epoch than its current one (an answer to a heartbeat sent before its latest hello).
   */
  epoch: number;
}

/** Worker -> controller, periodically: proof of life judged by the application, not ZMTP. */
export interface HeartbeatMsg {
  type: 'heartbeat';
  workerId: string;
  epoch: number;
  numQueuedActions: number;
  usedMemoryBytes: number;
  loadedModels: string[];
}

/** Any peer -> controller: one sample of the NTP-style offset exchange (see clock-sync.ts). */
export interface ClockPingMsg {
  type: 'clock_ping';
  seq: number;
  /** Peer clock. */
  t0Ns: number;
}

export interface ClockPongMsg {
  type: 'clock_pong';
  seq: number;
  t0Ns: number;
  /** Controller clock at receive. */
  t1Ns: number;
  /** Controller clock at send. */
  t2Ns: number;
}

/** The start window every action carries. The worker refuses to start outside it. */
export interface ActionWindow {
  actionId: number;
  /** Do not start before this. */
  earliestNs: number;
  /** Refuse (TOO_LATE) if it cannot start by this. */
  latestNs: number;
  /** The controller's prediction; the worker only reports it back in telemetry. */
  expectedDurationNs: number;
  /** When the controller's timeline expects the action to start (telemetry only). */
  expectedStartNs: number;
}

export interface LoadAction extends ActionWindow {
  type: 'load';
  modelName: string;
  /** Batch sizes to profile after warm-up; INFERs will only use these. */
  batchSizes: number[];
}

export interface UnloadAction extends ActionWindow {
  type: 'unload';
  modelName: string;
}

/**
 * Run a model on a batch. Frames carry one tensor per model input, each with `batchSize` rows:
 * `numRequests` real rows followed by zero padding. Designed so that a later INFER can run a
 * model as a chain of segments: the worker reports per-stage timings in `stages`.
 */
export interface InferAction extends ActionWindow {
  type: 'infer';
  modelName: string;
  batchSize: number;
  numRequests: number;
  inputs: TensorMeta[];
  /** Text models: the padded sequence length of every input's axis 1 (rows are zero-padded). */
  sequenceLength?: number;
  /** Run the model as a chain with these ramps attached (early-exit packages only). */
  earlyExit?: EarlyExitPlan;
}

export type ExitMode = 'release' | 'compact';

/** The ramp configuration an INFER runs with; the worker only follows it. */
export interface EarlyExitPlan {
  mode: ExitMode;
  /** Active ramps in depth order: a row exits at the first whose max softmax ≥ threshold. */
  ramps: { siteId: number; threshold: number }[];
  /** Compact mode: rows that run to the end even if they exit (accuracy monitoring sample). */
  keepRows: number[];
  /**
   * Release mode only: run the whole model with the active ramps' heads as extra outputs (one
   * session, built by a RAMPS action with `fused`) instead of the chain. Nobody is answered early
   * (every row gets the full model's answer), every row's ramp confidences still come back as
   * feedback, and the run costs about what the whole model does, where the chain costs more.
   */
  fused?: boolean;
}

/**
 * Worker -> controller, during an INFER: rows answered at a ramp. Frame 0 holds their
 * probabilities, [rows.length, numClasses]. The INFER's result follows later.
 */
export interface ExitMsg {
  type: 'exit';
  actionId: number;
  modelName: string;
  siteId: number;
  rows: number[];
  confidences: number[];
  predictions: number[];
  /** When the ramp answered (controller clock). */
  atNs: number;
  outputs: TensorMeta[];
}

/** Per active ramp, what every request row saw (NaN / -1 where a row did not reach it). */
export interface ExitFeedback {
  siteIds: number[];
  confidences: number[][];
  predictions: number[][];
  /** Final prediction per request row, -1 when the row left the batch (compact mode). */
  finalPredictions: number[];
}

/**
 * Prepare the chain of segments for a set of active ramps on a loaded early-exit package, so the
 * INFERs that use it never pay for building it. Planned on the worker's timeline like a LOAD.
 */
export interface RampsAction extends ActionWindow {
  type: 'ramps';
  modelName: string;
  /** Active ramp sites, depth order. */
  siteIds: number[];
  /** Also build the whole model with these ramps' heads fused in (release mode's `fused` INFERs). */
  fused?: boolean;
}

export type Action = LoadAction | UnloadAction | InferAction | RampsAction;
export type ActionType = Action['type'];

/** Timings of one action, in controller time. */
export interface ActionTiming {
  receivedNs: number;
  /** 0 when the action never started (refused). */
  startNs: number;
  endNs: number;
  /** Measured busy time of the executor (end - start for CPU work). */
  durationNs: number;
  sentNs: number;
}

/** Time spent in one stage of an action (a segment of a chained model, or the whole model). */
export interface StageTiming {
  name: string;
  durationNs: number;
  /** Rows the stage ran (a compact chain's later segments run fewer); absent: the whole batch. */
  numRows?: number;
}

export interface BatchProfileEntry {
  batchSize: number;
  /** Text models: the sequence length profiled at (every bucket of the manifest's `sequence`). */
  sequenceLength?: number;
  /** Median measured duration after warm-up. */
  durationNs: number;
  /** 99th percentile of the same runs. */
  p99DurationNs: number;
}

/** Worker -> controller: the outcome of one action (success or a coded refusal/failure). */
export interface ActionResultMsg {
  type: 'result';
  actionId: number;
  actionType: ActionType;
  modelName: string;
  /** 0 on success, else an ErrorCode. */
  code: number;
  message?: string;
  timing: ActionTiming;
  /** LOAD: profile of every requested batch size. */
  profile?: BatchProfileEntry[];
  /** LOAD: memory the model is accounted at on this worker. */
  weightsBytes?: number;
  /** INFER: outputs, each with `batchSize` rows; frames follow in this order. */
  outputs?: TensorMeta[];
  /** INFER with exits: which batch rows the outputs hold (compact mode drops exited rows). */
  outputRows?: number[];
  feedback?: ExitFeedback;
  stages?: StageTiming[];
}

export type WorkerToControllerMsg = HelloMsg | HeartbeatMsg | ClockPingMsg | ActionResultMsg | ExitMsg;
export type ControllerToWorkerMsg = HelloAckMsg | ReregisterMsg | ClockPongMsg | Action;

// ---------------------------------------------------------------------------------------------
// Client <-> controller

/** Client -> controller: one inference request (batch dimension 1 in every input). */
export interface SubmitMsg {
  type: 'submit';
  /** Chosen by the client, unique among its requests in flight. */
  requestId: string;
  model: string;
  /** Relative deadline: answer within this many ms of arrival. */
  sloMs?: number;
  /** Absolute deadline on the controller's clock (the client library converts its own). */
  deadlineNs?: number;
  inputs: TensorMeta[];
}

export type RequestStatus = 'OK' | 'REJECTED' | 'DEADLINE_MISSED' | 'ERROR';

/** Controller -> client: the one final answer to a request. */
export interface ResponseMsg {
  type: 'response';
  requestId: string;
  status: RequestStatus;
  /** ErrorCode; 0 when status is OK. */
  code: number;
  message?: string;
  /** Present when the model ran (also for DEADLINE_MISSED after a late finish). */
  outputs?: TensorMeta[];
  arrivalNs: number;
  deadlineNs: number;
  completeNs: number;
  workerId?: string;
  batchSize?: number;
  /** True when a ramp answered before the full model finished. */
  early?: boolean;
  /** The ramp's site id when early. */
  exitRamp?: number;
  /** Max softmax probability of the answer (early exits, and packages' final answers). */
  confidence?: number;
  /** Predicted class (early-exit packages). */
  prediction?: number;
}

export interface StatusQueryMsg {
  type: 'status_query';
  queryId: string;
}

export interface StatusReplyMsg {
  type: 'status_reply';
  queryId: string;
  status: unknown;
}

/** Client -> controller: change how the controller serves (benchmarks switch variants with it). */
export interface ConfigureMsg {
  type: 'configure';
  queryId: string;
  policy?: 'deadline' | 'fifo';
  batchTimeoutMs?: number;
  /** fifo: bound on full batches waiting per model (0: unbounded). */
  maxEnqueuedBatches?: number;
  exitMode?: ExitMode | 'off';
  /** Exit thresholds tuned online (default) or kept as the package chose them (a baseline). */
  thresholds?: 'online' | 'static';
  /**
   * Hold these thresholds for `model`'s active ramps (depth order), never re-tuned, applied after
   * `exitMode`/`thresholds`: an operator's choice, or compare's oracle schedule.
   */
  fixedThresholds?: { model: string; thresholds: number[] };
  /** Let the controller activate and deactivate ramps by utility (its `--adjust-ramps`). */
  adjustRamps?: boolean;
  /** The controller's admin token, when it was started with one (`--admin-token`). */
  adminToken?: string;
}

export interface ConfigureReplyMsg {
  type: 'configure_reply';
  queryId: string;
  code: number;
  message?: string;
}

export type ClientToControllerMsg = SubmitMsg | StatusQueryMsg | ClockPingMsg | ConfigureMsg;
export type ControllerToClientMsg = ResponseMsg | StatusReplyMsg | ClockPongMsg | ConfigureReplyMsg;

export type AnyMessage = WorkerToControllerMsg | ControllerToWorkerMsg | ClientToControllerMsg | ControllerToClientMsg;
