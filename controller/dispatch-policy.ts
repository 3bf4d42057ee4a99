/**
 * How requests wait and leave for workers: one implementation per batching policy, behind one
 * interface the scheduler calls at fixed points of its plan (`deadline-dispatch.ts`, the planner;
 * `fifo-dispatch.ts`, the TF-Serving/Triton-style baseline).
 */
import type { ModelState, WorkerState } from './cluster-state.js';
import type { InferPlan } from './infer-planning.js';
import type { QueuedRequest } from './request-queue.js';
import type { PlanResult, PlannedAction, RequestOutcome } from './core-outputs.js';
import type { RequestStatus } from '../shared/protocol.js';

export interface DispatchPolicy {
  /** Why a new request may not queue (it is answered REJECTED with it), or undefined to queue it. */
  refusal(model: ModelState, request: QueuedRequest, nowNs: number): { code: number; message: string } | undefined;
  /** Called once at the start of each plan, before `expire` and `fill`. */
  beginPlan(nowNs: number): void;
  /** Answers the model's queued requests that can no longer be served in time. */
  expire(model: ModelState, nowNs: number, result: PlanResult): void;
  /** Whether the worker takes new work in this plan (by when its timeline frees up). */
  takesWork(worker: WorkerState, nowNs: number): boolean;
  /** Fills one worker's timeline with INFERs from its loaded models' queues. */
  fill(worker: WorkerState, nowNs: number, result: PlanResult): void;
  /** When a model whose queue starts with `head` next needs a plan, without any new event. */
  wakeAtNs(model: ModelState, head: QueuedRequest): number;
}

/** What a policy asks of the scheduler, which owns queues' accounting, actions and answers. */
export interface DispatchHost {
  model(name: string): ModelState;
  /** Takes `count` requests from the model's queue, starting at `from`. */
  dequeue(model: ModelState, count: number, from?: number): QueuedRequest[];
  /** Plans an INFER of `requests` (rows in order) on the worker and commits it to its timeline. */
  planInfer(worker: WorkerState, model: ModelState, plan: InferPlan, nowNs: number): PlannedAction;
  /** The answer to a queued request no worker can start in time. */
  dropped(request: QueuedRequest, nowNs: number): RequestOutcome;
  fail(request: QueuedRequest, status: RequestStatus, code: number, message: string, nowNs: number): RequestOutcome;
}
