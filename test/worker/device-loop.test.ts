import { describe, expect, it } from 'vitest';
import { DeviceLoop, type DeviceOutcome } from '../../worker/device-loop.js';
import type { Executor } from '../../worker/executor.js';
import { ErrorCode } from '../../shared/error-codes.js';
import type { Action } from '../../shared/protocol.js';

const MS = 1_000_000;

/** An executor that finishes everything at once and records the order it ran things in. */
function fakeExecutor(ran: string[]): Executor {
  return {
    device: 'fake',
    load: async (entry) => {
      ran.push(`load ${entry.manifest.name}`);
      return { profile: [], weightsBytes: entry.fileBytes };
    },
    unload: async (name) => void ran.push(`unload ${name}`),
    prepareRamps: async () => undefined,
    infer: async (name, batchSize) => {
      ran.push(`infer ${name} ${batchSize}`);
      return { outputs: [], stages: [] };
    },
    close: async () => undefined,
  };
}

/** A device loop on a virtual clock: `advance` moves time and fires what is due. */
function rig(memoryBudgetBytes = 2 ** 30) {
  let nowNs = 1_000 * MS;
  const timers: { atNs: number; fn: () => void }[] = [];
  const ran: string[] = [];
  const outcomes: DeviceOutcome[] = [];
  const loop = new DeviceLoop(
    fakeExecutor(ran),
    {
      modelDir: 'models',
      memoryBudgetBytes,
      nowNs: () => nowNs,
      startAt: (atNs, fn) => {
        const timer = { atNs, fn };
        timers.push(timer);
        return { cancel: () => void timers.splice(timers.indexOf(timer), 1) };
      },
    },
    { outcome: (o) => outcomes.push(o), exit: () => undefined },
  );
  const settle = () => new Promise((r) => setTimeout(r, 5));
  return {
    loop,
    ran,
    outcomes,
    settle,
    get nowNs() {
      return nowNs;
    },
    async advance(ms: number) {
      nowNs += ms * MS;
      for (const t of timers.filter((x) => x.atNs <= nowNs)) {
        timers.splice(timers.indexOf(t), 1);
        t.fn();
      }
      await settle();
    },
    submit(action: Action, earliestNs: number, latestNs: number) {
      loop.submit({ action, tensors: [], receivedLocalNs: nowNs, earliestLocalNs: earliestNs, latestLocalNs: latestNs });
    },
  };
}

let nextId = 1;
const load = (modelName = 'mnist-cnn'): Action => ({
  type: 'load',
  actionId: nextId++,
  earliestNs: 0,
  latestNs: 0,
  expectedDurationNs: 0,
  expectedStartNs: 0,
  modelName,
  batchSizes: [1, 2],
});
const unload = (modelName = 'mnist-cnn'): Action => ({
  type: 'unload',
  actionId: nextId++,
  earliestNs: 0,
  latestNs: 0,
  expectedDurationNs: 0,
  expectedStartNs: 0,
  modelName,
});

describe('DeviceLoop', () => {
  it('runs jobs in order of earliest start, never before it', async () => {
    const r = rig();
    r.submit(load(), r.nowNs + 10 * MS, r.nowNs + 100 * MS);
    r.submit(unload(), r.nowNs + 20 * MS, r.nowNs + 100 * MS);
    await r.settle();
    expect(r.ran).toEqual([]);
    await r.advance(10);
    expect(r.ran).toEqual(['load mnist-cnn']);
    await r.advance(10);
    expect(r.ran).toEqual(['load mnist-cnn', 'unload mnist-cnn']);
    expect(r.outcomes.map((o) => o.code)).toEqual([ErrorCode.OK, ErrorCode.OK]);
    expect(r.outcomes[0]!.startLocalNs).toBeGreaterThanOrEqual(r.outcomes[0]!.receivedLocalNs + 10 * MS);
  });

  it('refuses without running a job that cannot start before its window closes', async () => {
    const r = rig();
    r.submit(load(), r.nowNs - 20 * MS, r.nowNs - 10 * MS);
    await r.settle();
    expect(r.ran).toEqual([]);
    expect(r.outcomes[0]).toMatchObject({ code: ErrorCode.LOAD_TOO_LATE, startLocalNs: 0 });
    expect(r.outcomes[0]!.message).toMatch(/window closed/);
  });

  it('refuses a LOAD beyond its memory budget, and an INFER of a model it does not hold', async () => {
    const r = rig(10);
    r.submit(load(), 0, Number.MAX_SAFE_INTEGER);
    const infer: Action = {
      type: 'infer',
      actionId: nextId++,
      earliestNs: 0,
      latestNs: 0,
      expectedDurationNs: 0,
      expectedStartNs: 0,
      modelName: 'mnist-cnn',
      batchSize: 1,
      numRequests: 1,
      inputs: [],
    };
    r.submit(infer, 0, Number.MAX_SAFE_INTEGER);
    await r.settle();
    expect(r.outcomes.map((o) => o.code)).toEqual([ErrorCode.LOAD_INSUFFICIENT_MEMORY, ErrorCode.INFER_NOT_LOADED]);
    expect(r.ran).toEqual([]);
  });

  it('answers every waiting job when drained, and tells what it holds', async () => {
    const r = rig();
    r.submit(load(), 0, Number.MAX_SAFE_INTEGER);
    r.submit(unload(), r.nowNs + 50 * MS, r.nowNs + 100 * MS);
    await r.settle();
    expect(r.outcomes[0]!.loadedModels).toEqual(['mnist-cnn']);
    expect(r.loop.numPending).toBe(1);
    r.loop.drain(ErrorCode.UNKNOWN_WORKER, 'worker re-registering');
    expect(r.outcomes[1]).toMatchObject({ code: ErrorCode.UNKNOWN_WORKER, message: 'worker re-registering' });
    expect(r.loop.numPending).toBe(0);
  });
});

describe('DeviceLoop.forgetModels', () => {
  it('unloads every model after the running job and before the next, freeing its memory', async () => {
    const { loadModelEntry } = await import('../../shared/model-manifest.js');
    const bytesOf = (name: string) => loadModelEntry('models', name).fileBytes;
    // room for either model, not both
    const r = rig(Math.max(bytesOf('mnist-cnn'), bytesOf('fmnist-resnet')) + 10);
    r.submit(load('mnist-cnn'), 0, Number.MAX_SAFE_INTEGER);
    await r.settle();
    r.loop.forgetModels();
    r.submit(load('fmnist-resnet'), 0, Number.MAX_SAFE_INTEGER);
    await r.settle();
    expect(r.ran).toEqual(['load mnist-cnn', 'unload mnist-cnn', 'load fmnist-resnet']);
    expect(r.outcomes.map((o) => o.code)).toEqual([ErrorCode.OK, ErrorCode.OK]);
    expect(r.outcomes[1]!.loadedModels).toEqual(['fmnist-resnet']);
  });
});
