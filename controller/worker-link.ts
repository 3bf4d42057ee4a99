/**
 * The controller's side of its workers: one ZeroMQ ROUTER, who is registered (a worker's link:
 * routing id, last heard, registration epoch), registration with its checks (the routing id is the
 * worker id; with keys, the key bound to that id), heartbeat supervision, and refusing messages
 * that cannot be true. It decides nothing about work: registrations, removals, results and exits
 * go to `WorkerEvents` (the controller, which hands them to the planner).
 */
import * as zmq from 'zeromq';
import { decodeMessage, encodeMessage, isProtocolError } from '../shared/codec.js';
import type { AuthorizedKeys, KeyPair } from '../shared/curve-keys.js';
import { verifyHelloProof } from '../shared/key-proof.js';
import { PROTOCOL_VERSION, type ActionResultMsg, type AnyMessage, type ExitMsg, type HelloMsg } from '../shared/protocol.js';
import type { RateLimitedLog } from '../shared/rate-limited-log.js';
import { SerialSender } from '../shared/serial-sender.js';
import type { Tensor } from '../shared/tensor.js';

/** A worker's report may run this far ahead of the controller's clock (clock-sync error) before it is refused. */
const MAX_FUTURE_SKEW_NS = 1e9;

/** What the controller does with what workers say. */
export interface WorkerEvents {
  /** A worker registered; a known id means it restarted (whatever it held is gone). */
  registered(workerId: string, memoryBudgetBytes: number, nowNs: number): void;
  removed(workerId: string, reason: string): void;
  /** Why a result does not match what was sent to this worker (undefined when it does). */
  resultMismatch(workerId: string, msg: ActionResultMsg): string | undefined;
  result(workerId: string, msg: ActionResultMsg, tensors: Tensor[], nowNs: number): void;
  exit(workerId: string, msg: ExitMsg, tensors: Tensor[], nowNs: number): void;
  /** A message refused (malformed, or untrue): counted in status. */
  refused(): void;
}

export interface WorkerLinksOptions {
  heartbeatIntervalMs: number;
  /** A worker silent this long is removed. */
  heartbeatTimeoutMs: number;
  /** With CURVE keys: the controller's pair, and each authorized worker key with the id bound to it (if any). */
  curve?: { keys: KeyPair; authorizedWorkers: AuthorizedKeys };
  nowNs(): number;
  log(line: string): void;
  /** Refusals: logged, a few lines a second per kind at most. */
  refusals: RateLimitedLog;
}

interface Link {
  routingId: Buffer;
  lastSeenNs: number;
  epoch: number;
}

export class WorkerLinks {
  private readonly links = new Map<string, Link>();
  private readonly sender: SerialSender;

  constructor(
    readonly router: zmq.Router,
    private readonly events: WorkerEvents,
    private readonly options: WorkerLinksOptions,
  ) {
    this.sender = new SerialSender(router, (err, frames) => this.onSendError(err, frames));
  }

  get size(): number {
    return this.links.size;
  }

  has(workerId: string): boolean {
    return this.links.has(workerId);
  }

  close(): void {
    this.sender.close();
    this.router.close();
  }

  send(workerId: string, msg: AnyMessage, tensors: Uint8Array[] = []): void {
    const link = this.links.get(workerId);
    if (link) this.sendTo(link.routingId, msg, tensors);
  }

  private sendTo(routingId: Buffer, msg: AnyMessage, tensors: Uint8Array[] = []): void {
    this.sender.send([routingId, ...encodeMessage(msg, tensors)]);
  }

  /** One message from a worker (or from anyone who reached the port). */
  onFrames(routingId: Buffer, frames: Buffer[]): void {
    const nowNs = this.options.nowNs();
    let decoded;
    try {
      decoded = decodeMessage(frames);
    } catch (err) {
      this.refuse(routingId, isProtocolError(err) ? err.message : String(err));
      return;
    }
    const { header: msg, tensors } = decoded;
    if (msg.type === 'clock_ping') {
      this.sendTo(routingId, { type: 'clock_pong', seq: msg.seq, t0Ns: msg.t0Ns, t1Ns: nowNs, t2Ns: this.options.nowNs() });
      return;
    }
    if (msg.type === 'hello') {
      this.onHello(routingId, msg, nowNs);
      return;
    }
    const workerId = routingId.toString();
    const link = this.links.get(workerId);
    if (!link) {
      // Only heartbeats carry the worker's epoch; they arrive every 200 ms, so answering them suffices.
      if (msg.type === 'heartbeat')
        this.sendTo(routingId, { type: 'reregister', reason: 'unknown worker (controller restarted or declared it dead)', epoch: msg.epoch });
      return;
    }
    if (msg.type === 'heartbeat' && msg.epoch !== link.epoch) return; // from before its latest hello
    if (msg.type === 'result') {
      const refusal = resultTimesRefusal(msg, nowNs) ?? this.events.resultMismatch(workerId, msg);
      if (refusal) return this.refuse(routingId, refusal);
    }
    link.lastSeenNs = nowNs;
    if (msg.type === 'result') this.events.result(workerId, msg, tensors, nowNs);
    else if (msg.type === 'exit') this.events.exit(workerId, msg, tensors, nowNs);
  }

  /** A message that cannot be true costs its sender a logged refusal and nothing else. */
  private refuse(routingId: Buffer, reason: string): void {
    this.events.refused();
    this.options.refusals.write('worker-refusal', `refused a message from worker '${routingId.toString().slice(0, 64)}': ${reason}`);
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
      this.options.refusals.write('hello-refusal', `refused hello from '${workerId.slice(0, 64)}': ${keyRefusal}`);
      return;
    }
    this.links.set(workerId, { routingId, lastSeenNs: nowNs, epoch });
    this.events.registered(workerId, memoryBudgetBytes, nowNs);
    this.options.log(`worker ${workerId} registered (${device}, ${(memoryBudgetBytes / 2 ** 20).toFixed(0)} MiB)`);
    this.sendTo(routingId, { type: 'hello_ack', v: PROTOCOL_VERSION, workerId, heartbeatIntervalMs: this.options.heartbeatIntervalMs, epoch });
  }

  remove(workerId: string, reason: string): void {
    if (!this.links.delete(workerId)) return;
    this.options.log(`worker ${workerId} removed: ${reason}`);
    this.events.removed(workerId, reason);
  }

  /** Removes every worker silent for longer than the heartbeat timeout. */
  supervise(): void {
    const nowNs = this.options.nowNs();
    for (const [workerId, link] of this.links) {
      const silentMs = (nowNs - link.lastSeenNs) / 1e6;
      if (silentMs > this.options.heartbeatTimeoutMs) this.remove(workerId, `no heartbeat for ${silentMs.toFixed(0)} ms`);
    }
  }

  private onSendError(err: Error & { code?: string }, frames: Buffer[]): void {
    const workerId = frames[0]?.toString() ?? '?';
    this.remove(workerId, `unreachable (${err.code ?? err.message})`);
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
