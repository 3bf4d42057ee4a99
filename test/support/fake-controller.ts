/**
 * A stand-in controller for worker tests: a real zeromq ROUTER on loopback that acknowledges a
 * real worker process, answers its clock pings, and lets the test send actions and await results.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as zmq from 'zeromq';
import { cliEntryPath } from '../../cluster/local-cluster.js';
import { monotonicNowNs } from '../../shared/clock.js';
import { decodeMessage, encodeMessage } from '../../shared/codec.js';
import type { ActionResultMsg, AnyMessage, ExitMsg } from '../../shared/protocol.js';
import type { Tensor } from '../../shared/tensor.js';

export class FakeController {
  private readonly router = new zmq.Router({ linger: 0, mandatory: true, sendTimeout: 0 });
  private readonly results: { msg: ActionResultMsg; tensors: Tensor[]; atNs: number }[] = [];
  readonly exits: { msg: ExitMsg; tensors: Tensor[]; atNs: number }[] = [];
  private waiters: (() => void)[] = [];
  private workerRoutingId: Buffer | undefined;
  private child: ChildProcess | undefined;
  readonly log: string[] = [];
  endpoint = '';

  async start(): Promise<void> {
    await this.router.bind('tcp://127.0.0.1:*');
    this.endpoint = this.router.lastEndpoint!;
    void this.readLoop();
  }

  private async readLoop(): Promise<void> {
    try {
      for await (const [id, ...frames] of this.router) {
        const { header, tensors } = decodeMessage(frames);
        if (header.type === 'hello') {
          this.workerRoutingId = id;
          await this.send({ type: 'hello_ack', v: 1, workerId: header.workerId, heartbeatIntervalMs: 200, epoch: header.epoch });
        } else if (header.type === 'clock_ping') {
          const t = monotonicNowNs();
          await this.send({ type: 'clock_pong', seq: header.seq, t0Ns: header.t0Ns, t1Ns: t, t2Ns: t });
        } else if (header.type === 'exit') {
          this.exits.push({ msg: header, tensors, atNs: monotonicNowNs() });
        } else if (header.type === 'result') {
          this.results.push({ msg: header, tensors, atNs: monotonicNowNs() });
          for (const w of this.waiters.splice(0)) w();
        }
      }
    } catch {
      // closed
    }
  }

  /** Starts a worker process connected to this fake controller and waits for its hello. */
  async startWorker(args: string[], modelDir = 'models'): Promise<void> {
    this.child = spawn(process.execPath, [cliEntryPath(), 'worker', '--controller', this.endpoint, '--id', 'w-test', '--model-dir', modelDir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stderr!.on('data', (d: Buffer) => this.log.push(d.toString()));
    const deadline = Date.now() + 30_000;
    while (!this.workerRoutingId) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`worker did not register:\n${this.log.join('')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 100)); // let its clock sync finish
  }

  async send(msg: AnyMessage, tensors: Uint8Array[] = []): Promise<void> {
    await this.router.send([this.workerRoutingId!, ...encodeMessage(msg, tensors)]);
  }

  async sendRaw(frames: Buffer[]): Promise<void> {
    await this.router.send([this.workerRoutingId!, ...frames]);
  }

  /** Waits for the result of an action. */
  async result(actionId: number, timeoutMs = 20_000): Promise<{ msg: ActionResultMsg; tensors: Tensor[]; atNs: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.results.find((r) => r.msg.actionId === actionId);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no result for action ${actionId}:\n${this.log.join('')}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async close(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      const exited = new Promise((r) => this.child!.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    this.router.close();
  }
}
