/**
 * What `escapement status` (a `status_reply`) says about a controller, defined once: the
 * controller builds it typed, the client checks it deeply on arrival and hands it out typed.
 * Measurements are any number (NaN: no samples yet).
 */
import { Type, type Static } from '@sinclair/typebox';
import { anyNumber, int, list, str } from './schema.js';

const count = int(0);
const name = str(256);

/** One threshold or ramp-set change of an exit monitor, with its reason. */
export const ExitChangeRecord = Type.Object({
  /** Samples the monitor had seen when it happened. */
  atSample: count,
  kind: Type.Union([Type.Literal('thresholds'), Type.Literal('ramps')]),
  reason: str(),
  /** Thresholds (kind thresholds) or active sites (kind ramps), before and after. */
  before: list(anyNumber(), 64),
  after: list(anyNumber(), 64),
});
export type ExitChangeRecord = Static<typeof ExitChangeRecord>;

/** A model's early exits: active ramps, thresholds, who answered, agreement over the window. */
export const ExitStats = Type.Object({
  model: name,
  siteIds: list(int(0), 64),
  thresholds: list(anyNumber(), 64),
  /** Weighted answers per ramp, and answers by the full model. */
  exitsPerRamp: list(anyNumber(), 64),
  fullAnswers: anyNumber(),
  /** Agreement of the answers given with the full model, over the window. */
  windowAgreement: anyNumber(),
  numSamples: count,
  numRetunes: count,
  /** The latest threshold and ramp changes with their reasons, oldest first. */
  recentChanges: list(ExitChangeRecord, 256),
  /** Fewer or more rows exit than the window predicts: every exit is labelled until the monitor knows (compact mode). */
  suspectsDrift: Type.Boolean(),
  /** The window's exits as effective observations (Kish's size): what the tuner's bound rests on. */
  effectiveExits: Type.Optional(anyNumber()),
  /** Compact mode: the share of exits run on to the end to be labelled now (1 while the evidence is thin, a drift is suspected or the window fills). */
  labelledShare: Type.Optional(anyNumber()),
});
export type ExitStats = Static<typeof ExitStats>;

/** Predicted against actual, per model and stage, over recent INFERs. */
export const StageError = Type.Object({
  model: name,
  stage: name,
  numSamples: count,
  /** |actual − predicted| / predicted, % (for `start` and `hop`: ms). */
  p50: anyNumber(),
  p99: anyNumber(),
  /** Median of actual − predicted (signed; % or ms as above): a bias shows here. */
  bias: anyNumber(),
  unit: Type.Union([Type.Literal('%'), Type.Literal('ms')]),
});
export type StageError = Static<typeof StageError>;

const msByBatchSize = Type.Record(Type.String(), anyNumber());

export const WorkerStatus = Type.Object({
  id: name,
  memoryBudgetBytes: anyNumber(),
  usedBytes: anyNumber(),
  /** When its timeline frees up, from now. */
  freeInMs: anyNumber(),
  /** How long after it is planned an action on this idle worker starts: its learned median (hop and dispatch), or the configured one. */
  startDelayMs: anyNumber(),
  numInflight: count,
  models: list(Type.Object({ name, state: str(32) }), 100_000),
  /** Estimated INFER duration per model and batch size; text models: per sequence bucket (`T64`), then batch size. */
  estimatesMs: Type.Record(Type.String(), Type.Record(Type.String(), Type.Union([anyNumber(), msByBatchSize]))),
});
export type WorkerStatus = Static<typeof WorkerStatus>;

export const ControllerStatus = Type.Object({
  uptimeMs: anyNumber(),
  /** Requests submitted and not yet answered. */
  numPending: count,
  eventLoopDelayMs: Type.Object({ p50: anyNumber(), p99: anyNumber(), max: anyNumber() }),
  memoryRssBytes: anyNumber(),
  counters: Type.Object({
    submitted: count,
    answered: count,
    byStatus: Type.Record(Type.String(), count),
    /** Messages refused by the codec or a handler's checks. */
    malformed: count,
    /** Exceptions inside a handler (each answered, never fatal). */
    handlerErrors: count,
  }),
  adjustRamps: Type.Boolean(),
  /** Present when the controller writes telemetry logs (`--log-dir`). */
  telemetry: Type.Optional(Type.Object({ stoppedBecause: Type.Union([str(), Type.Null()]), droppedRows: count })),
  exits: list(ExitStats, 100_000),
  predictions: list(StageError, 100_000),
  /** Requests queued in the planner, all models. */
  numQueued: count,
  models: list(Type.Object({ name, numQueued: count }), 100_000),
  workers: list(WorkerStatus, 100_000),
});
export type ControllerStatus = Static<typeof ControllerStatus>;
