/**
 * The worker process's adapter: a zeromq DEALER to the controller, the clock offset to it, and
 * the device (device.ts) that queues and runs actions one at a time.
 *
 * The worker is punctual and dumb. It never decides policy: its device starts each action no
 * earlier than `earliestNs`, refuses it (TOO_LATE) if it cannot start by `latestNs`, refuses a
 * LOAD that would exceed its memory budget instead of evicting; this side translates windows to
 * the local clock as actions arrive and reports timings on the controller's clock. Liveness is
 * shown by application heartbeats (ZMTP heartbeats cannot see a blocked event loop); a worker the
 * controller no longer knows is told to re-register and does so.
 */
import { hostname } from 'node:os';
import * as zmq from 'zeromq';
import { monotonicNowNs } from '../shared/clock.js';
import { ClockSyncSession } from '../shared/clock-sync.js';
import { DEFAULT_MAX_TENSOR_BYTES, decodeMessage, encodeMessage, isProtocolError } from '../shared/codec.js';
import { ErrorCode } from '../shared/error-codes.js';
import { PROTOCOL_VERSION, type Action, type ActionResultMsg, type AnyMessage } from '../shared/protocol.js';
import type { Tensor } from '../shared/tensor.js';
import { SerialSender } from '../shared/serial-sender.js';
import type { PeerKeys } from '../shared/curve-keys.js';
import { helloProof } from '../shared/key-proof.js';
import type { Device } from './device.js';
import type { DeviceExit, DeviceOutcome } from './device-loop.js';

export interface WorkerServerOptions {
  controllerUrl: string;
  workerId: string;
  modelDir: string;
  memoryBudgetBytes: number;
  /** Application heartbeat period. Default 200 ms. */
  heartbeatIntervalMs: number;
  /** How often the clock offset is re-estimated. Default 5 s. */
  clockResyncIntervalMs: number;
  log: (line: string) => void;
  /** CURVE: this worker's key pair and the controller's public key. */
  curve?: PeerKeys;
  /**
   * Testing aid: pretend this host's clock is this far from the controller's (ns), as on another
   * machine. The offset estimation must absorb it. Default 0.
   */
  clockSkewNs?: number;
}

export class WorkerServer {
  private readonly dealer: zmq.Dealer;
  private readonly clockSync: ClockSyncSession;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly sender: SerialSender;
  private offsetNs = 0;
  /** What the device holds, as its last outcome said (for heartbeats). */
  private loadedModels: string[] = [];
  private usedBytes = 0;
  private registered = false;
  /** Registration attempt counter; see ReregisterMsg. */
  private epoch = 0;
  private closed = false;

  constructor(
    private readonly device: Device,
    private readonly options: WorkerServerOptions,
  ) {
    const curve = options.curve
      ? { curveServerKey: options.curve.serverPublicKey, curvePublicKey: options.curve.publicKey, curveSecretKey: options.curve.secretKey }
      : {};
    this.dealer = new zmq.Dealer({
      routingId: options.workerId,
      linger: 0,
      sendHighWaterMark: 10_000,
      receiveHighWaterMark: 10_000,
      maxMessageSize: DEFAULT_MAX_TENSOR_BYTES,
      ...curve,
    });
    this.skewNs = options.clockSkewNs ?? 0;
    this.sender = new SerialSender(this.dealer, (err) => {
      if (!this.closed) this.options.log(`send failed: ${err.message}`);
    });
    this.clockSync = new ClockSyncSession(
      (ping) => this.send(ping),
      () => this.localNowNs(),
    );
    device.listen({ outcome: (o) => this.onOutcome(o), exit: (e) => this.onExit(e) });
  }

  private readonly skewNs: number;

  /** This worker's clock (the monotonic clock, plus the test skew). */
  private localNowNs(): number {
    return monotonicNowNs() + this.skewNs;
  }

  /** Controller time now, as this worker estimates it. */
  controllerNowNs(): number {
    return this.localNowNs() + this.offsetNs;
  }

  async start(): Promise<void> {
    this.dealer.connect(this.options.controllerUrl);
    void this.readLoop();
    await this.register();
    this.timers.push(setInterval(() => this.heartbeat(), this.options.heartbeatIntervalMs));
    this.timers.push(setInterval(() => void this.resyncClock(), this.options.clockResyncIntervalMs));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.sender.close();
    this.dealer.close();
    await this.device.close();
  }

  private send(msg: AnyMessage, tensors: Uint8Array[] = []): void {
    if (this.closed) return;
    // NOTE: bounded like every socket's queue: a full queue drops the message (logged); the
    // controller's overdue-action expiry covers a lost result.
    if (!this.sender.send(encodeMessage(msg, tensors))) this.options.log(`send queue full: dropped a '${msg.type}' message`);
  }

  private async register(): Promise<void> {
    while (!this.registered && !this.closed) {
      this.epoch++;
      this.send({
        type: 'hello',
        v: PROTOCOL_VERSION,
        workerId: this.options.workerId,
        device: this.device.device,
        memoryBudgetBytes: this.options.memoryBudgetBytes,
        pid: process.pid,
        hostname: hostname(),
        epoch: this.epoch,
        ...(this.options.curve ? { keyProof: helloProof(this.options.curve, this.options.curve.serverPublicKey, this.options.workerId) } : {}),
      });
      for (let waitedMs = 0; waitedMs < 1000 && !this.registered && !this.closed; waitedMs += 20) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await this.resyncClock(32);
    this.options.log(`clock offset to the controller ${(this.offsetNs / 1e6).toFixed(3)} ms`);
  }

  private async resyncClock(numPings = 8): Promise<void> {
    const estimate = await this.clockSync.estimate(numPings);
    if (estimate) this.offsetNs = estimate.offsetNs;
  }

  private heartbeat(): void {
    if (!this.registered) return;
    this.send({
      type: 'heartbeat',
      workerId: this.options.workerId,
      epoch: this.epoch,
      numQueuedActions: this.device.numPending,
      usedMemoryBytes: this.usedBytes,
      loadedModels: this.loadedModels,
    });
  }

  private async readLoop(): Promise<void> {
    try {
      for await (const frames of this.dealer) {
        const receivedLocalNs = this.localNowNs();
        try {
          const { header, tensors } = decodeMessage(frames);
          this.onMessage(header, tensors, receivedLocalNs);
        } catch (err) {
          // A malformed message from the controller is logged and dropped; the worker keeps running.
          this.options.log(`dropped a message: ${isProtocolError(err) ? err.message : String(err)}`);
        }
      }
    } catch (err) {
      if (!this.closed) this.options.log(`reader stopped: ${(err as Error).message}`);
    }
  }

  private onMessage(msg: AnyMessage, tensors: Tensor[], receivedLocalNs: number): void {
    switch (msg.type) {
      case 'hello_ack':
        if (msg.epoch !== this.epoch) return; // an answer to an earlier attempt
        if (!this.registered) this.options.log(`registered with ${this.options.controllerUrl}`);
        this.registered = true;
        return;
      case 'reregister':
        if (this.registered && msg.epoch >= this.epoch) {
          this.options.log(`controller asked to re-register: ${msg.reason}`);
          this.registered = false;
          // Whatever the controller planned for us before is void, and so is what it loaded: it
          // registers us as empty and plans our memory so (a model kept would over-commit it).
          this.device.drain(ErrorCode.UNKNOWN_WORKER, 'worker re-registering');
          this.device.forgetModels();
          void this.register();
        }
        return;
      case 'clock_pong':
        this.clockSync.onPong(msg);
        return;
      case 'load':
      case 'unload':
      case 'infer':
      case 'ramps':
        this.submit(msg, tensors, receivedLocalNs);
        return;
      default:
        this.options.log(`ignored unexpected '${msg.type}' message`);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Actions: to the device with their windows on its clock; outcomes back on the controller's

  /** The device runs on the real monotonic clock; this worker's clock is that plus the test skew. */
  private toDeviceNs(controllerNs: number): number {
    return controllerNs - this.offsetNs - this.skewNs;
  }

  private toControllerNs(deviceNs: number): number {
    return deviceNs + this.skewNs + this.offsetNs;
  }

  private submit(action: Action, tensors: Tensor[], receivedLocalNs: number): void {
    this.device.submit({
      action,
      tensors,
      receivedLocalNs: receivedLocalNs - this.skewNs,
      earliestLocalNs: this.toDeviceNs(action.earliestNs),
      latestLocalNs: this.toDeviceNs(action.latestNs),
    });
  }

  private onOutcome(o: DeviceOutcome): void {
    this.loadedModels = o.loadedModels;
    this.usedBytes = o.usedBytes;
    const started = o.startLocalNs > 0;
    const msg: ActionResultMsg = {
      type: 'result',
      actionId: o.actionId,
      actionType: o.actionType,
      modelName: o.modelName,
      code: o.code,
      timing: {
        receivedNs: this.toControllerNs(o.receivedLocalNs),
        startNs: started ? this.toControllerNs(o.startLocalNs) : 0,
        endNs: this.toControllerNs(o.endLocalNs),
        durationNs: started ? o.endLocalNs - o.startLocalNs : 0,
        sentNs: this.controllerNowNs(),
      },
    };
    if (o.message !== undefined) msg.message = o.message;
    if (o.profile) msg.profile = o.profile;
    if (o.weightsBytes !== undefined) msg.weightsBytes = o.weightsBytes;
    if (o.stages) msg.stages = o.stages;
    if (o.outputRows) msg.outputRows = o.outputRows;
    if (o.feedback) msg.feedback = o.feedback;
    if (o.outputs) msg.outputs = o.outputs.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    this.send(msg, o.outputs?.map((t) => t.data) ?? []);
  }

  private onExit(e: DeviceExit): void {
    this.send(
      {
        type: 'exit',
        actionId: e.actionId,
        modelName: e.modelName,
        siteId: e.siteId,
        rows: e.rows,
        confidences: e.confidences,
        predictions: e.predictions,
        atNs: this.toControllerNs(e.atLocalNs),
        outputs: [{ name: 'probabilities', dtype: 'float32', shape: [e.rows.length, e.numClasses] }],
      },
      [e.probabilities],
    );
  }
}
