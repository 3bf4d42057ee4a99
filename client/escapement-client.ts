/**
 * The TypeScript client: submits requests with SLO deadlines to a controller over zeromq and
 * resolves each with exactly one final answer.
 *
 * `submit()` never rejects: success, early-exit success, rejection, a missed deadline and every
 * error (including a controller that never answers: CLIENT_TIMEOUT, or `close()`:
 * CLIENT_CLOSED) arrive as an `InferResponse` with a status and a stable code.
 */
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import { monotonicNowNs } from '../shared/clock.js';
import { ClockSyncSession } from '../shared/clock-sync.js';
import { DEFAULT_MAX_TENSOR_BYTES, decodeMessage, encodeMessage } from '../shared/codec.js';
import { ErrorCode, describeError } from '../shared/error-codes.js';
import type { AnyMessage, ConfigureMsg, RequestStatus, ResponseMsg } from '../shared/protocol.js';
import { SerialSender } from '../shared/serial-sender.js';
import type { PeerKeys } from '../shared/curve-keys.js';
import type { Tensor } from '../shared/tensor.js';
import type { ControllerStatus } from '../shared/status-schema.js';

export interface SubmitOptions {
  /** Relative deadline in ms (from the controller's arrival time). */
  sloMs?: number;
  /** Absolute deadline on this process's monotonic clock (ns); converted to controller time. */
  deadlineLocalNs?: number;
  /**
   * Give up waiting after this long (ms) and answer CLIENT_TIMEOUT. Default: the SLO plus 5 s,
   * so a dead controller never leaves a request hanging.
   */
  timeoutMs?: number;
}

export interface InferResponse {
  requestId: string;
  status: RequestStatus;
  code: number;
  message?: string;
  outputs: Tensor[];
  /** Measured by this client, send to receive. */
  clientLatencyMs: number;
  /** Measured by the controller, arrival to answer. */
  serverLatencyMs?: number;
  workerId?: string;
  batchSize?: number;
  /** Early-exit models: answered at a ramp (true) or by the full model (false). */
  early?: boolean;
  exitRamp?: number;
  confidence?: number;
  prediction?: number;
}

interface Pending {
  resolve: (r: InferResponse) => void;
  sentLocalNs: number;
  timer: NodeJS.Timeout;
}

/** How many answered request ids the client remembers to recognise duplicate answers. */
const RECENT_ANSWERS = 100_000;

export class EscapementClient {
  private readonly dealer: zmq.Dealer;
  private readonly sender: SerialSender;
  private readonly pending = new Map<string, Pending>();
  /** Ids of the latest answered requests (insertion order), to tell a duplicate answer from an unknown one. */
  private readonly recentlyAnswered = new Set<string>();
  /**
   * Answers that matched no request in flight: `duplicate` for a request already answered (the
   * controller broke exactly-once), `unknown` for one this client never sent or gave up on.
   */
  readonly answerCounts = { duplicate: 0, unknown: 0 };
  private readonly statusQueries = new Map<string, (status: ControllerStatus) => void>();
  private readonly configureQueries = new Map<string, (code: number, message?: string) => void>();
  private readonly clockSync: ClockSyncSession;
  private offsetNs = 0;
  private closed = false;

  private constructor(
    readonly endpoint: string,
    curve?: PeerKeys,
  ) {
    const secured = curve ? { curveServerKey: curve.serverPublicKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey } : {};
    this.dealer = new zmq.Dealer({ linger: 0, sendHighWaterMark: 10_000, receiveHighWaterMark: 10_000, maxMessageSize: DEFAULT_MAX_TENSOR_BYTES, ...secured });
    this.sender = new SerialSender(this.dealer, (err, frames) => this.onSendError(err, frames));
    this.clockSync = new ClockSyncSession((ping) => this.sender.send(encodeMessage(ping)), monotonicNowNs);
  }

  /** Connects and estimates the clock offset to the controller (so absolute deadlines convert). */
  static async connect(endpoint: string, options: { syncClock?: boolean; curve?: PeerKeys } = {}): Promise<EscapementClient> {
    const client = new EscapementClient(endpoint, options.curve);
    client.dealer.connect(endpoint);
    void client.readLoop();
    if (options.syncClock ?? true) {
      const estimate = await client.clockSync.estimate(8, 500);
      if (estimate) client.offsetNs = estimate.offsetNs;
    }
    return client;
  }

  get numInFlight(): number {
    return this.pending.size;
  }

  submit(model: string, inputs: Tensor[], options: SubmitOptions): Promise<InferResponse> {
    const requestId = randomUUID();
    const sentLocalNs = monotonicNowNs();
    return new Promise<InferResponse>((resolve) => {
      const local = (status: RequestStatus, code: number, message: string): void =>
        resolve({ requestId, status, code, message, outputs: [], clientLatencyMs: (monotonicNowNs() - sentLocalNs) / 1e6 });
      if (this.closed) return local('ERROR', ErrorCode.CLIENT_CLOSED, 'the client is closed');
      const msg: AnyMessage = { type: 'submit', requestId, model, inputs: inputs.map(({ name, dtype, shape }) => ({ name, dtype, shape })) };
      if (options.sloMs !== undefined) msg.sloMs = options.sloMs;
      if (options.deadlineLocalNs !== undefined) msg.deadlineNs = options.deadlineLocalNs + this.offsetNs;
      const budgetMs = options.sloMs ?? (options.deadlineLocalNs !== undefined ? (options.deadlineLocalNs - sentLocalNs) / 1e6 : 0);
      const timeoutMs = options.timeoutMs ?? Math.max(0, budgetMs) + 5_000;
      const timer = setTimeout(() => {
        if (!this.pending.delete(requestId)) return;
        local('ERROR', ErrorCode.CLIENT_TIMEOUT, `no answer from ${this.endpoint} within ${timeoutMs} ms`);
      }, timeoutMs);
      this.pending.set(requestId, { resolve, sentLocalNs, timer });
      if (
        !this.sender.send(
          encodeMessage(
            msg,
            inputs.map((t) => t.data),
          ),
        )
      ) {
        this.pending.delete(requestId);
        clearTimeout(timer);
        local('ERROR', ErrorCode.QUEUE_FULL, 'the client send queue is full');
      }
    });
  }

  /** Changes how the controller serves: batching policy, early-exit mode. Rejects on a refusal. */
  configure(settings: Omit<ConfigureMsg, 'type' | 'queryId'>, timeoutMs = 2000): Promise<void> {
    const queryId = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.configureQueries.delete(queryId);
        reject(new Error(`no answer to configure from ${this.endpoint} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.configureQueries.set(queryId, (code, message) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`configure refused (${code}): ${message ?? ''}`));
      });
      this.sender.send(encodeMessage({ type: 'configure', queryId, ...settings }));
    });
  }

  /** The controller's status snapshot (workers, queues, estimates, counters). */
  status(timeoutMs = 2000): Promise<ControllerStatus> {
    const queryId = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.statusQueries.delete(queryId);
        reject(new Error(`no status from ${this.endpoint} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.statusQueries.set(queryId, (status) => {
        clearTimeout(timer);
        resolve(status);
      });
      this.sender.send(encodeMessage({ type: 'status_query', queryId }));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [requestId, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({
        requestId,
        status: 'ERROR',
        code: ErrorCode.CLIENT_CLOSED,
        message: 'the client was closed',
        outputs: [],
        clientLatencyMs: (monotonicNowNs() - p.sentLocalNs) / 1e6,
      });
    }
    this.pending.clear();
    this.sender.close();
    this.dealer.close();
  }

  private onSendError(err: Error, frames: Buffer[]): void {
    try {
      const { header } = decodeMessage(frames);
      if (header.type === 'submit')
        this.answer(
          {
            type: 'response',
            requestId: header.requestId,
            status: 'ERROR',
            code: ErrorCode.CLIENT_CLOSED,
            message: `send failed: ${err.message}`,
            arrivalNs: 0,
            deadlineNs: 0,
            completeNs: 0,
          },
          [],
        );
    } catch {
      // not a submit: nothing waits on it
    }
  }

  private async readLoop(): Promise<void> {
    try {
      for await (const frames of this.dealer) {
        let decoded;
        try {
          decoded = decodeMessage(frames);
        } catch {
          continue; // a malformed answer cannot be matched to a request; its timeout answers it
        }
        const { header, tensors } = decoded;
        if (header.type === 'response') this.answer(header, tensors);
        else if (header.type === 'clock_pong') this.clockSync.onPong(header);
        else if (header.type === 'status_reply') this.statusQueries.get(header.queryId)?.(header.status);
        else if (header.type === 'configure_reply') this.configureQueries.get(header.queryId)?.(header.code, header.message);
      }
    } catch {
      // socket closed
    }
  }

  private answer(msg: ResponseMsg, tensors: Tensor[]): void {
    const p = this.pending.get(msg.requestId);
    if (!p) {
      // A second answer to a request already answered breaks "exactly once"; count it, never hide it.
      if (this.recentlyAnswered.has(msg.requestId)) this.answerCounts.duplicate++;
      else this.answerCounts.unknown++;
      return;
    }
    this.pending.delete(msg.requestId);
    this.recentlyAnswered.add(msg.requestId);
    if (this.recentlyAnswered.size > RECENT_ANSWERS) this.recentlyAnswered.delete(this.recentlyAnswered.values().next().value!);
    clearTimeout(p.timer);
    const response: InferResponse = {
      requestId: msg.requestId,
      status: msg.status,
      code: msg.code,
      message: msg.message ?? (msg.code !== 0 ? describeError(msg.code) : undefined),
      outputs: tensors,
      clientLatencyMs: (monotonicNowNs() - p.sentLocalNs) / 1e6,
    } as InferResponse;
    if (msg.arrivalNs > 0 && msg.completeNs > 0) response.serverLatencyMs = (msg.completeNs - msg.arrivalNs) / 1e6;
    if (msg.workerId !== undefined) response.workerId = msg.workerId;
    if (msg.batchSize !== undefined) response.batchSize = msg.batchSize;
    if (msg.early !== undefined) response.early = msg.early;
    if (msg.exitRamp !== undefined) response.exitRamp = msg.exitRamp;
    if (msg.confidence !== undefined) response.confidence = msg.confidence;
    if (msg.prediction !== undefined) response.prediction = msg.prediction;
    p.resolve(response);
  }
}
