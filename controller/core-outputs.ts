/**
 * What the planning core hands the adapter to carry out: each request's one final answer, and
 * the actions to send to workers (an INFER with the requests of its rows).
 */
import type { Action, RequestStatus } from '../shared/protocol.js';
import type { QueuedRequest } from './request-queue.js';

/** The one final answer to a request, as decided by the core. */
export interface RequestOutcome {
  requestId: number;
  status: RequestStatus;
  code: number;
  message?: string;
  completeNs: number;
  workerId?: string;
  actionId?: number;
  batchSize?: number;
  /** Row of the request in its INFER's outputs (or in its exit message's probabilities). */
  batchIndex?: number;
  /** Early-exit models: answered at a ramp (true) or by the full model (false). */
  early?: boolean;
  exitRamp?: number;
  confidence?: number;
  prediction?: number;
}

export interface PlannedAction {
  workerId: string;
  action: Action;
  /** For an INFER: the requests of rows 0..n-1, in order. */
  requests: QueuedRequest[];
}

export interface PlanResult {
  actions: PlannedAction[];
  outcomes: RequestOutcome[];
}
