/**
 * Every request the controller has taken in and not yet answered, with how its answer goes back:
 * what makes "exactly one answer per request" checkable. Also refuses a client's duplicate ids
 * and counts each client's share of the pending requests (request-intake.ts bounds it).
 */
import type { ResponseMsg, SubmitMsg } from '../shared/protocol.js';
import type { Tensor } from '../shared/tensor.js';
import type { RequestOrigin } from './client-gateway.js';
import type { AdmissionPrediction } from './request-queue.js';
import type { RequestOutcome } from './core-outputs.js';

export interface PendingRequest {
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

export class PendingRequests {
  private readonly byId = new Map<number, PendingRequest>();
  private readonly dedupeKeys = new Set<string>();
  private readonly perClient = new Map<string, number>();
  private nextId = 1;

  get size(): number {
    return this.byId.size;
  }

  isDuplicate(origin: RequestOrigin): boolean {
    return this.dedupeKeys.has(origin.dedupeKey);
  }

  numPendingOf(origin: RequestOrigin): number {
    return this.perClient.get(origin.clientKey) ?? 0;
  }

  add(origin: RequestOrigin, msg: SubmitMsg, inputs: Tensor[], arrivalNs: number, deadlineNs: number): PendingRequest {
    const request: PendingRequest = { id: this.nextId++, origin, clientRequestId: msg.requestId, model: msg.model, inputs, arrivalNs, deadlineNs };
    this.byId.set(request.id, request);
    this.dedupeKeys.add(origin.dedupeKey);
    this.perClient.set(origin.clientKey, this.numPendingOf(origin) + 1);
    return request;
  }

  get(id: number): PendingRequest | undefined {
    return this.byId.get(id);
  }

  /** Removes a request about to be answered. */
  take(request: PendingRequest): void {
    this.byId.delete(request.id);
    this.dedupeKeys.delete(request.origin.dedupeKey);
    const left = this.numPendingOf(request.origin) - 1;
    if (left > 0) this.perClient.set(request.origin.clientKey, left);
    else this.perClient.delete(request.origin.clientKey);
  }

  /** A copy: answering while iterating is safe. */
  all(): PendingRequest[] {
    return [...this.byId.values()];
  }
}

/** A request's answer: the response, and when the model ran for it, its row of each output. */
export function answerFor(
  request: PendingRequest,
  outcome: Omit<RequestOutcome, 'requestId'>,
  outputs: Tensor[],
): { response: ResponseMsg; frames: Uint8Array[] } {
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
  return { response, frames };
}
