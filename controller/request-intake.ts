/**
 * What a submitted request must be before the planner sees it: not a duplicate of one its client
 * has in flight, within its client's share of the queue, with exactly one of an SLO or a deadline
 * within an hour, for a model the controller serves and has not taken out of service, with inputs
 * that match the model's (text: its bucket chosen). Pure: the adapter keeps the bookkeeping and
 * answers the refusals.
 */
import { ErrorCode } from '../shared/error-codes.js';
import type { SubmitMsg } from '../shared/protocol.js';
import { sequenceBucket } from '../shared/sequence-buckets.js';
import { validateRequestInputs, type Tensor } from '../shared/tensor.js';
import type { ModelSpec } from './cluster-state.js';

/**
 * Most requests one client may have pending at once: a quarter of the planner's queue bound, so one
 * client with hour-long SLOs cannot crowd every other client out.
 */
export const DEFAULT_MAX_PENDING_PER_CLIENT = 25_000;
/** Longest SLO or deadline a request may ask for (an hour), in ms. */
const MAX_SLO_MS = 3_600_000;

/** What intake reads of the planner. */
export interface IntakePlanner {
  modelSpec(modelName: string): ModelSpec | undefined;
  isOutOfService(modelName: string): boolean;
}

/** The request's client, as the adapter tracks it. */
export interface ClientStanding {
  /** The client already has a request with this id in flight. */
  duplicate: boolean;
  numPending: number;
  maxPending: number;
}

export type Intake = { refusal: { code: number; message: string } } | { deadlineNs: number; spec: ModelSpec; seqBucket?: number };

export function takeIn(msg: SubmitMsg, tensors: readonly Tensor[], nowNs: number, client: ClientStanding, planner: IntakePlanner): Intake {
  const refuse = (code: number, message: string): Intake => ({ refusal: { code, message } });
  if (client.duplicate) return refuse(ErrorCode.DUPLICATE_REQUEST_ID, `request id '${msg.requestId}' is already in flight`);
  if (client.numPending >= client.maxPending)
    return refuse(ErrorCode.QUEUE_FULL, `this client already has ${client.numPending} requests pending (limit ${client.maxPending} per client)`);
  const deadlineNs = resolveDeadline(msg, nowNs);
  if (typeof deadlineNs === 'string') return refuse(ErrorCode.INVALID_DEADLINE, deadlineNs);
  const spec = planner.modelSpec(msg.model);
  if (!spec) return refuse(ErrorCode.UNKNOWN_MODEL, `unknown model '${msg.model}'`);
  if (planner.isOutOfService(msg.model))
    return refuse(ErrorCode.MODEL_UNAVAILABLE, `model '${msg.model}' was unloaded; load it through the repository API first`);
  let seqLength: number;
  try {
    seqLength = validateRequestInputs(spec.inputs, [...tensors], spec.sequenceBuckets?.at(-1) ?? 0);
  } catch (err) {
    return refuse(ErrorCode.INVALID_INPUT, (err as Error).message);
  }
  // Text models: the request is batched at the smallest bucket that holds its tokens.
  return seqLength > 0 ? { deadlineNs, spec, seqBucket: sequenceBucket(spec.sequenceBuckets!, seqLength)! } : { deadlineNs, spec };
}

/** The request's absolute deadline, or why it has none: exactly one of `sloMs` and `deadlineNs`, within an hour. */
export function resolveDeadline(msg: Pick<SubmitMsg, 'sloMs' | 'deadlineNs'>, nowNs: number): number | string {
  const hasSlo = msg.sloMs !== undefined;
  const hasDeadline = msg.deadlineNs !== undefined;
  if (hasSlo === hasDeadline) return 'give exactly one of sloMs or deadlineNs';
  if (hasSlo) {
    if (!(msg.sloMs! > 0) || msg.sloMs! > MAX_SLO_MS) return `sloMs must be in (0, ${MAX_SLO_MS}], got ${msg.sloMs}`;
    return nowNs + Math.round(msg.sloMs! * 1e6);
  }
  if (msg.deadlineNs! <= nowNs) return 'deadlineNs is already in the past';
  if (msg.deadlineNs! - nowNs > MAX_SLO_MS * 1e6) return 'deadlineNs is more than an hour away';
  return msg.deadlineNs!;
}
