/**
 * The worker's device as its main thread sees it: submit actions (windows on this host's
 * monotonic clock) and hear one outcome per action, plus the exits of INFERs as they happen. The
 * device loop (device-loop.ts) runs on this thread around an executor: the onnxruntime one, whose
 * sessions live in the inference thread (thread-executor.ts), or the simulated one.
 */
import { monotonicNowNs } from '../shared/clock.js';
import type { Action } from '../shared/protocol.js';
import type { Tensor } from '../shared/tensor.js';
import { DeviceLoop, type DeviceJob, type DeviceListener, type DeviceOutcome } from './device-loop.js';
import type { Executor } from './executor.js';
import { startAt } from './precise-timer.js';

export class Device {
  private listener: DeviceListener = { outcome: () => undefined, exit: () => undefined };
  private readonly loop: DeviceLoop;

  constructor(
    private readonly executor: Executor,
    options: { modelDir: string; memoryBudgetBytes: number },
  ) {
    this.loop = new DeviceLoop(
      executor,
      { ...options, nowNs: monotonicNowNs, startAt },
      { outcome: (o) => this.listener.outcome(o), exit: (e) => this.listener.exit(e) },
    );
  }

  /** `cpu`, `cuda:N`, `simulated`, ... */
  get device(): string {
    return this.executor.device;
  }

  /** Jobs submitted and not yet answered. */
  get numPending(): number {
    return this.loop.numPending;
  }

  /** Where outcomes and exits go (one listener; a later call replaces it). */
  listen(listener: DeviceListener): void {
    this.listener = listener;
  }

  submit(job: DeviceJob): void {
    this.loop.submit(job);
  }

  /** Refuses every job still waiting. */
  drain(code: number, message: string): void {
    this.loop.drain(code, message);
  }

  /** Unloads every model after the running job (see DeviceLoop.forgetModels). */
  forgetModels(): void {
    this.loop.forgetModels();
  }

  async close(): Promise<void> {
    this.loop.close();
    await this.executor.close();
  }
}

const runners = new WeakMap<Device, Map<number, (o: DeviceOutcome) => void>>();

/**
 * Runs one action now (an open window) and resolves with its outcome: for benchmarks and tools
 * that drive a device directly. It becomes the device's listener; exits are dropped.
 */
export function runNow(device: Device, action: Action, tensors: Tensor[] = []): Promise<DeviceOutcome> {
  let waiting = runners.get(device);
  if (!waiting) {
    const map = new Map<number, (o: DeviceOutcome) => void>();
    waiting = map;
    runners.set(device, map);
    device.listen({ outcome: (o) => map.get(o.actionId)?.(o), exit: () => undefined });
  }
  const nowNs = monotonicNowNs();
  return new Promise((resolve) => {
    waiting.set(action.actionId, (o) => {
      waiting.delete(action.actionId);
      resolve(o);
    });
    device.submit({ action, tensors, receivedLocalNs: nowNs, earliestLocalNs: 0, latestLocalNs: Number.MAX_SAFE_INTEGER });
  });
}
