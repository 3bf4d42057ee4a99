/**
 * Every message that crosses a process boundary, defined once: each is a TypeBox schema, its type
 * comes from the schema (`Static`), and `codec.ts` checks every decoded header against it deeply
 * (`message-schema.ts` adds the checks a schema cannot say). Both the controller and the workers
 * (and the client library) import this file; nothing else is shared between them.
 *
 * Wire layout (see `codec.ts`): frame 0 is a msgpack header (one of the messages below), and
 * frames 1..n are raw tensor bytes in the order the header lists them (`inputs` or `outputs`).
 * All times are nanoseconds on the controller's clock (`shared/clock.ts`) unless a field says
 * otherwise.
 */
import { Type, type Static } from '@sinclair/typebox';
import { dtype, int, list, MAX_DURATION_NS, MAX_ID_CHARS, MAX_LIST, MAX_NS, MAX_ROWS, num, numberOrNaN, shape, str } from './schema.js';
import { ControllerStatus } from './status-schema.js';

export const PROTOCOL_VERSION = 1;

const ns = num(0, MAX_NS);
const durationNs = num(0, MAX_DURATION_NS);
const id = str(MAX_ID_CHARS);
const row = int(0, MAX_ROWS - 1);
const classIndex = int(-1, 1_000_000);
const batchSize = int(1, MAX_ROWS);
const siteId = int(0, MAX_LIST);
const errorCode = int(0, 65_535);
const sequenceLength = int(1, 1 << 20);

export const TensorMetaSchema = Type.Object({ name: str(MAX_ID_CHARS), dtype, shape });
const tensors = list(TensorMetaSchema, 64);

// ---------------------------------------------------------------------------------------------
// Controller <-> worker

/** Worker -> controller: register (or re-register after a controller restart). */
export const HelloMsg = Type.Object({
  type: Type.Literal('hello'),
  v: int(),
  workerId: id,
  /** `cpu`, `cuda:N`, `webgpu`, or `simulated`. */
  device: str(64),
  memoryBudgetBytes: num(0, 2 ** 52),
  pid: int(0),
  hostname: str(MAX_ID_CHARS),
  /** Increases with every registration attempt of this worker process. */
  epoch: int(0),
  /** With CURVE keys: proof that it holds the key bound to `workerId` (shared/key-proof.ts). */
  keyProof: Type.Optional(str(64)),
});
export type HelloMsg = Static<typeof HelloMsg>;

/** Controller -> worker: registration accepted. */
export const HelloAckMsg = Type.Object({
  type: Type.Literal('hello_ack'),
  v: int(),
  workerId: id,
  /** How often the controller expects a heartbeat. */
  heartbeatIntervalMs: num(1, 60_000),
  /** The registration being acknowledged. */
  epoch: int(0),
});
export type HelloAckMsg = Static<typeof HelloAckMsg>;

/** Controller -> peer: the controller does not know you (it restarted, or declared you dead). */
export const ReregisterMsg = Type.Object({
  type: Type.Literal('reregister'),
  reason: str(),
  /**
   * The epoch of the heartbeat that was not recognised. A worker ignores a reregister for an
   * older epoch than its current one (an answer to a heartbeat sent before its latest hello).
   */
  epoch: int(0),
});
export type ReregisterMsg = Static<typeof ReregisterMsg>;

/** Worker -> controller, periodically: proof of life judged by the application, not ZMTP. */
export const HeartbeatMsg = Type.Object({
  type: Type.Literal('heartbeat'),
  workerId: id,
  epoch: int(0),
  numQueuedActions: int(0, 1_000_000),
  usedMemoryBytes: num(0, 2 ** 52),
  loadedModels: list(id),
});
export type HeartbeatMsg = Static<typeof HeartbeatMsg>;

/** Any peer -> controller: one sample of the NTP-style offset exchange (see clock-sync.ts). */
export const ClockPingMsg = Type.Object({
  type: Type.Literal('clock_ping'),
  seq: int(0),
  /** Peer clock. */
  t0Ns: ns,
});
export type ClockPingMsg = Static<typeof ClockPingMsg>;

export const ClockPongMsg = Type.Object({
  type: Type.Literal('clock_pong'),
  seq: int(0),
  t0Ns: ns,
  /** Controller clock at receive. */
  t1Ns: ns,
  /** Controller clock at send. */
  t2Ns: ns,
});
export type ClockPongMsg = Static<typeof ClockPongMsg>;

/** The start window every action carries. The worker refuses to start outside it. */
const actionWindow = {
  actionId: int(0),
  /** Do not start before this. */
  earliestNs: ns,
  /** Refuse (TOO_LATE) if it cannot start by this. */
  latestNs: ns,
  /** The controller's prediction; the worker only reports it back in telemetry. */
  expectedDurationNs: durationNs,
  /** When the controller's timeline expects the action to start (telemetry only). */
  expectedStartNs: ns,
};
export const ActionWindow = Type.Object(actionWindow);
export type ActionWindow = Static<typeof ActionWindow>;

export const LoadAction = Type.Object({
  type: Type.Literal('load'),
  ...actionWindow,
  modelName: id,
  /** Batch sizes to profile after warm-up; INFERs will only use these. */
  batchSizes: list(batchSize, 64),
});
export type LoadAction = Static<typeof LoadAction>;

export const UnloadAction = Type.Object({ type: Type.Literal('unload'), ...actionWindow, modelName: id });
export type UnloadAction = Static<typeof UnloadAction>;

export const ExitMode = Type.Union([Type.Literal('release'), Type.Literal('compact')], { description: "'release' or 'compact'" });
export type ExitMode = Static<typeof ExitMode>;

/** The ramp configuration an INFER runs with; the worker only follows it. */
export const EarlyExitPlan = Type.Object({
  mode: ExitMode,
  /** Active ramps in depth order: a row exits at the first whose max softmax ≥ threshold. */
  ramps: list(Type.Object({ siteId, threshold: num(0, 2) }), 64),
  /** Compact mode: rows that run to the end even if they exit (accuracy monitoring sample). */
  keepRows: list(row, MAX_ROWS),
  /**
   * Compact mode: the share of requests `keepRows` was drawn from (1: every row kept), so that the
   * controller weighs each kept exit as the 1 / fraction exits it stands for. The worker ignores it.
   */
  monitorFraction: Type.Optional(num(0, 1)),
  /**
   * Release mode only: run the whole model with the active ramps' heads as extra outputs (one
   * session, built by a RAMPS action with `fused`) instead of the chain. Nobody is answered early
   * (every row gets the full model's answer), every row's ramp confidences still come back as
   * feedback, and the run costs about what the whole model does, where the chain costs more.
   */
  fused: Type.Optional(Type.Boolean()),
});
export type EarlyExitPlan = Static<typeof EarlyExitPlan>;

/**
 * Run a model on a batch. Frames carry one tensor per model input, each with `batchSize` rows:
 * `numRequests` real rows followed by zero padding. Designed so that a later INFER can run a
 * model as a chain of segments: the worker reports per-stage timings in `stages`.
 */
export const InferAction = Type.Object({
  type: Type.Literal('infer'),
  ...actionWindow,
  modelName: id,
  batchSize,
  numRequests: batchSize,
  inputs: tensors,
  /** Text models: the padded sequence length of every input's axis 1 (rows are zero-padded). */
  sequenceLength: Type.Optional(sequenceLength),
  /** Run the model as a chain with these ramps attached (early-exit packages only). */
  earlyExit: Type.Optional(EarlyExitPlan),
});
export type InferAction = Static<typeof InferAction>;

/**
 * Worker -> controller, during an INFER: rows answered at a ramp. Frame 0 holds their
 * probabilities, [rows.length, numClasses]. The INFER's result follows later.
 */
export const ExitMsg = Type.Object({
  type: Type.Literal('exit'),
  actionId: int(0),
  modelName: id,
  siteId,
  rows: list(row, MAX_ROWS),
  confidences: list(num(0, 1), MAX_ROWS),
  predictions: list(classIndex, MAX_ROWS),
  /** When the ramp answered (controller clock). */
  atNs: ns,
  outputs: tensors,
});
export type ExitMsg = Static<typeof ExitMsg>;

/** Per active ramp, what every request row saw (NaN / -1 where a row did not reach it). */
export const ExitFeedback = Type.Object({
  siteIds: list(siteId, 64),
  confidences: list(list(numberOrNaN(0, 1), MAX_ROWS), 64),
  predictions: list(list(classIndex, MAX_ROWS), 64),
  /** Final prediction per request row, -1 when the row left the batch (compact mode). */
  finalPredictions: list(classIndex, MAX_ROWS),
});
export type ExitFeedback = Static<typeof ExitFeedback>;

/**
 * Prepare the chain of segments for a set of active ramps on a loaded early-exit package, so the
 * INFERs that use it never pay for building it. Planned on the worker's timeline like a LOAD.
 */
export const RampsWarmup = Type.Union([Type.Literal('full'), Type.Literal('smoke')], { description: 'a warm-up (full, smoke)' });
export type RampsWarmup = Static<typeof RampsWarmup>;

export const RampsAction = Type.Object({
  type: Type.Literal('ramps'),
  ...actionWindow,
  modelName: id,
  /** Active ramp sites, depth order. */
  siteIds: list(siteId, 64),
  /** Also build the whole model with these ramps' heads fused in (release mode's `fused` INFERs). */
  fused: Type.Optional(Type.Boolean()),
  /**
   * How the new sessions run before the action ends: `full` (default) at every batch size, twice,
   * for a model that has not served yet (cold onnxruntime shapes and thread); `smoke`, one run at
   * batch 1, for a ramp change during service, where a full warm-up would hold the worker away
   * from its queue for hundreds of ms (worker/ort-executor.ts, warmChain).
   */
  warmup: Type.Optional(RampsWarmup),
});
export type RampsAction = Static<typeof RampsAction>;

export type Action = LoadAction | UnloadAction | InferAction | RampsAction;
export const ActionType = Type.Union([Type.Literal('load'), Type.Literal('unload'), Type.Literal('infer'), Type.Literal('ramps')], {
  description: 'an action type (load, unload, infer, ramps)',
});
export type ActionType = Static<typeof ActionType>;

/** Timings of one action, in controller time. */
export const ActionTiming = Type.Object({
  receivedNs: ns,
  /** 0 when the action never started (refused). */
  startNs: ns,
  endNs: ns,
  /** Measured busy time of the executor (end - start for CPU work). */
  durationNs,
  sentNs: ns,
});
export type ActionTiming = Static<typeof ActionTiming>;

/** Time spent in one stage of an action (a segment of a chained model, or the whole model). */
export const StageTiming = Type.Object({
  name: str(MAX_ID_CHARS),
  durationNs,
  /** Rows the stage ran (a compact chain's later segments run fewer); absent: the whole batch. */
  numRows: Type.Optional(row),
});
export type StageTiming = Static<typeof StageTiming>;

export const BatchProfileEntry = Type.Object({
  batchSize,
  /** Text models: the sequence length profiled at (every bucket of the manifest's `sequence`). */
  sequenceLength: Type.Optional(sequenceLength),
  /** Median measured duration after warm-up. */
  durationNs,
  /** 99th percentile of the same runs. */
  p99DurationNs: durationNs,
});
export type BatchProfileEntry = Static<typeof BatchProfileEntry>;

/** Worker -> controller: the outcome of one action (success or a coded refusal/failure). */
export const ActionResultMsg = Type.Object({
  type: Type.Literal('result'),
  actionId: int(0),
  actionType: ActionType,
  modelName: id,
  /** 0 on success, else an ErrorCode. */
  code: errorCode,
  message: Type.Optional(str()),
  timing: ActionTiming,
  /** LOAD: profile of every requested batch size. */
  profile: Type.Optional(list(BatchProfileEntry, 4096)),
  /** LOAD: memory the model is accounted at on this worker. */
  weightsBytes: Type.Optional(num(0, 2 ** 52)),
  /** INFER: outputs, each with `batchSize` rows; frames follow in this order. */
  outputs: Type.Optional(tensors),
  /** INFER with exits: which batch rows the outputs hold (compact mode drops exited rows). */
  outputRows: Type.Optional(list(row, MAX_ROWS)),
  feedback: Type.Optional(ExitFeedback),
  stages: Type.Optional(list(StageTiming, 256)),
});
export type ActionResultMsg = Static<typeof ActionResultMsg>;

export type WorkerToControllerMsg = HelloMsg | HeartbeatMsg | ClockPingMsg | ActionResultMsg | ExitMsg;
export type ControllerToWorkerMsg = HelloAckMsg | ReregisterMsg | ClockPongMsg | Action;

// ---------------------------------------------------------------------------------------------
// Client <-> controller

/** Client -> controller: one inference request (batch dimension 1 in every input). */
export const SubmitMsg = Type.Object({
  type: Type.Literal('submit'),
  /** Chosen by the client, unique among its requests in flight. */
  requestId: id,
  model: id,
  /** Relative deadline: answer within this many ms of arrival. */
  sloMs: Type.Optional(num()),
  /** Absolute deadline on the controller's clock (the client library converts its own). */
  deadlineNs: Type.Optional(num()),
  inputs: tensors,
});
export type SubmitMsg = Static<typeof SubmitMsg>;

export const RequestStatus = Type.Union([Type.Literal('OK'), Type.Literal('REJECTED'), Type.Literal('DEADLINE_MISSED'), Type.Literal('ERROR')], {
  description: 'a request status (OK, REJECTED, DEADLINE_MISSED, ERROR)',
});
export type RequestStatus = Static<typeof RequestStatus>;

/** Controller -> client: the one final answer to a request. */
export const ResponseMsg = Type.Object({
  type: Type.Literal('response'),
  requestId: id,
  status: RequestStatus,
  /** ErrorCode; 0 when status is OK. */
  code: errorCode,
  message: Type.Optional(str()),
  /** Present when the model ran (also for DEADLINE_MISSED after a late finish). */
  outputs: Type.Optional(tensors),
  arrivalNs: num(),
  deadlineNs: num(),
  completeNs: num(),
  workerId: Type.Optional(id),
  batchSize: Type.Optional(int(0, MAX_ROWS)),
  /** True when a ramp answered before the full model finished. */
  early: Type.Optional(Type.Boolean()),
  /** The ramp's site id when early. */
  exitRamp: Type.Optional(siteId),
  /** Max softmax probability of the answer (early exits, and packages' final answers). */
  confidence: Type.Optional(numberOrNaN()),
  /** Predicted class (early-exit packages). */
  prediction: Type.Optional(classIndex),
});
export type ResponseMsg = Static<typeof ResponseMsg>;

export const StatusQueryMsg = Type.Object({ type: Type.Literal('status_query'), queryId: id });
export type StatusQueryMsg = Static<typeof StatusQueryMsg>;

/** Controller -> client: the controller's state (`escapement status`), checked deeply like every message. */
export const StatusReplyMsg = Type.Object({ type: Type.Literal('status_reply'), queryId: id, status: ControllerStatus });
export type StatusReplyMsg = Static<typeof StatusReplyMsg>;

/** Client -> controller: change how the controller serves (benchmarks switch variants with it). */
export const ConfigureMsg = Type.Object({
  type: Type.Literal('configure'),
  queryId: id,
  policy: Type.Optional(Type.Union([Type.Literal('deadline'), Type.Literal('fifo')], { description: "'deadline' or 'fifo'" })),
  batchTimeoutMs: Type.Optional(num()),
  /** fifo: bound on full batches waiting per model (0: unbounded). */
  maxEnqueuedBatches: Type.Optional(num()),
  exitMode: Type.Optional(Type.Union([ExitMode, Type.Literal('off')], { description: "'off', 'release' or 'compact'" })),
  /** Exit thresholds tuned online (default) or kept as the package chose them (a baseline). */
  thresholds: Type.Optional(Type.Union([Type.Literal('online'), Type.Literal('static')], { description: "'online' or 'static'" })),
  /**
   * Hold these thresholds for `model`'s active ramps (depth order), never re-tuned, applied after
   * `exitMode`/`thresholds`: an operator's choice, or compare's oracle schedule.
   */
  fixedThresholds: Type.Optional(Type.Object({ model: str(256), thresholds: list(num(0, 2), 64) })),
  /** Let the controller activate and deactivate ramps by utility (its `--adjust-ramps`). */
  adjustRamps: Type.Optional(Type.Boolean()),
  /** The share of each package's accuracy budget the online tuner may spend, in (0, 1] (its `--tuning-budget-share`); every early-exit model starts over. */
  tuningBudgetShare: Type.Optional(num()),
  /** The controller's admin token, when it was started with one (`--admin-token`). */
  adminToken: Type.Optional(str(256)),
});
export type ConfigureMsg = Static<typeof ConfigureMsg>;

export const ConfigureReplyMsg = Type.Object({ type: Type.Literal('configure_reply'), queryId: id, code: errorCode, message: Type.Optional(str()) });
export type ConfigureReplyMsg = Static<typeof ConfigureReplyMsg>;

export type ClientToControllerMsg = SubmitMsg | StatusQueryMsg | ClockPingMsg | ConfigureMsg;
export type ControllerToClientMsg = ResponseMsg | StatusReplyMsg | ClockPongMsg | ConfigureReplyMsg;

export type AnyMessage = WorkerToControllerMsg | ControllerToWorkerMsg | ClientToControllerMsg | ControllerToClientMsg;

/** Every message's schema, by its `type`. */
export const MESSAGES = {
  hello: HelloMsg,
  hello_ack: HelloAckMsg,
  reregister: ReregisterMsg,
  heartbeat: HeartbeatMsg,
  clock_ping: ClockPingMsg,
  clock_pong: ClockPongMsg,
  load: LoadAction,
  ramps: RampsAction,
  unload: UnloadAction,
  infer: InferAction,
  result: ActionResultMsg,
  exit: ExitMsg,
  submit: SubmitMsg,
  response: ResponseMsg,
  status_query: StatusQueryMsg,
  status_reply: StatusReplyMsg,
  configure: ConfigureMsg,
  configure_reply: ConfigureReplyMsg,
} satisfies Record<AnyMessage['type'], unknown>;
