/**
 * A hostile worker for tests: it registers with a real controller like any worker (hello, then
 * heartbeats), so its messages reach the result, exit and heartbeat handlers, and answers every
 * action it is sent with whatever the test's `answer` callback forges.
 */
import { Packr } from 'msgpackr';
import * as zmq from 'zeromq';
import { decodeMessage } from '../../shared/codec.js';
import type { Action } from '../../shared/protocol.js';

/** Packs anything, BigInts and msgpackr's extension types included (a hostile peer would). */
const hostilePackr = new Packr({ useRecords: false, moreTypes: true, structuredClone: true });

export function hostilePack(value: unknown): Buffer {
  return hostilePackr.pack(value);
}

export interface RogueWorkerOptions {
  workerUrl: string;
  workerId: string;
  /** Frames to send back for an action; none to stay silent. Called for each action received. */
  answer: (action: Action, index: number) => Buffer[][];
}

export class RogueWorker {
  private readonly dealer: zmq.Dealer;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly reading: Promise<void>;
  readonly actionsReceived: Action[] = [];
  registered = false;

  constructor(private readonly options: RogueWorkerOptions) {
    this.dealer = new zmq.Dealer({ routingId: options.workerId, linger: 0 });
    this.dealer.connect(options.workerUrl);
    const hello = { type: 'hello', v: 1, workerId: options.workerId, device: 'cpu', memoryBudgetBytes: 2 ** 30, pid: process.pid, hostname: 'rogue', epoch: 1 };
    void this.dealer.send(hostilePack(hello));
    this.heartbeat = setInterval(() => {
      void this.send([hostilePack({ type: 'heartbeat', workerId: options.workerId, epoch: 1, numQueuedActions: 0, usedMemoryBytes: 0, loadedModels: [] })]);
    }, 100);
    this.reading = this.readLoop();
  }

  /** Sends raw frames as this worker (the test's own forgeries). */
  async send(frames: Buffer[]): Promise<void> {
    try {
      await this.dealer.send(frames);
    } catch {
      // closed
    }
  }

  private async readLoop(): Promise<void> {
    try {
      for await (const frames of this.dealer) {
        const { header } = decodeMessage(frames as Buffer[]);
        if (header.type === 'hello_ack') this.registered = true;
        if (!['load', 'unload', 'infer', 'ramps'].includes(header.type)) continue;
        const action = header as Action;
        this.actionsReceived.push(action);
        for (const reply of this.options.answer(action, this.actionsReceived.length - 1)) await this.send(reply);
      }
    } catch {
      // socket closed
    }
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.dealer.close();
    await this.reading;
  }
}
