import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { monotonicNowNs } from '../../shared/clock.js';
import { ErrorCode } from '../../shared/error-codes.js';
import type { InferAction, LoadAction } from '../../shared/protocol.js';
import { asFloat32, bytesOf } from '../../shared/tensor.js';
import { decodeTensor } from '../../onnx/onnx-proto.js';
import { FakeController } from '../support/fake-controller.js';

const MS = 1_000_000;
let nextActionId = 1;

function window(earliestNs: number, latestNs: number) {
  return { actionId: nextActionId++, earliestNs, latestNs, expectedDurationNs: 1 * MS, expectedStartNs: earliestNs };
}

function load(modelName: string): LoadAction {
  const now = monotonicNowNs();
  return { type: 'load', ...window(now, now + 60_000 * MS), modelName, batchSizes: [1, 2, 4] };
}

function infer(batchSize: number, earliestNs: number, latestNs: number): InferAction {
  return {
    type: 'infer',
    ...window(earliestNs, latestNs),
    modelName: 'mnist-cnn',
    batchSize,
    numRequests: batchSize,
    inputs: [{ name: 'Input3', dtype: 'float32', shape: [batchSize, 1, 28, 28] }],
  };
}

const zeros = (batchSize: number) => new Uint8Array(batchSize * 784 * 4);

describe.each([
  { executor: 'onnxruntime', args: ['--threads', '1'] },
  { executor: 'simulated', args: ['--simulate'] },
])('a real worker process ($executor) against a fake controller', ({ args }) => {
  const controller = new FakeController();
  beforeAll(async () => {
    await controller.start();
    await controller.startWorker(args);
    const loaded = await controller.result(await sendAndId(load('mnist-cnn')));
    expect(loaded.msg.code).toBe(0);
    expect(loaded.msg.profile!.map((p) => p.batchSize)).toEqual([1, 2, 4]);
  });
  afterAll(() => controller.close());

  async function sendAndId(action: LoadAction | InferAction, tensors: Uint8Array[] = []): Promise<number> {
    await controller.send(action, tensors);
    return action.actionId;
  }

  it('does not start an action before its window opens', async () => {
    const earliestNs = monotonicNowNs() + 40 * MS;
    const { msg } = await controller.result(await sendAndId(infer(1, earliestNs, earliestNs + 1000 * MS), [zeros(1)]));
    expect(msg.code).toBe(0);
    expect(msg.timing.startNs).toBeGreaterThanOrEqual(earliestNs);
  });

  it('refuses with TOO_LATE an action that cannot start before its window closes', async () => {
    const now = monotonicNowNs();
    const { msg } = await controller.result(await sendAndId(infer(1, now - 20 * MS, now - 10 * MS), [zeros(1)]));
    expect(msg.code).toBe(ErrorCode.INFER_TOO_LATE);
    expect(msg.timing.startNs).toBe(0);
  });

  it('runs actions in order of earliest start, not of arrival', async () => {
    const now = monotonicNowNs();
    const later = await sendAndId(infer(1, now + 60 * MS, now + 5000 * MS), [zeros(1)]);
    const sooner = await sendAndId(infer(1, now + 30 * MS, now + 5000 * MS), [zeros(1)]);
    const [a, b] = await Promise.all([controller.result(later), controller.result(sooner)]);
    expect(b.msg.timing.startNs).toBeLessThan(a.msg.timing.startNs);
  });

  it('refuses a batch whose input shape does not match, and keeps serving', async () => {
    const now = monotonicNowNs();
    const bad = infer(2, now, now + 5000 * MS);
    bad.inputs = [{ name: 'Input3', dtype: 'float32', shape: [2, 1, 28, 27] }];
    const { msg } = await controller.result(await sendAndId(bad, [new Uint8Array(2 * 28 * 27 * 4)]));
    expect(msg.code).toBe(ErrorCode.INFER_INVALID_INPUT);
    expect(msg.message).toMatch(/shape/);
    await controller.sendRaw([Buffer.from('garbage')]);
    const ok = await controller.result(await sendAndId(infer(2, now, now + 5000 * MS), [zeros(2)]));
    expect(ok.msg.code).toBe(0);
  });

  it('refuses a batch size that was not profiled at LOAD', async () => {
    const now = monotonicNowNs();
    const { msg } = await controller.result(await sendAndId(infer(8, now, now + 5000 * MS), [zeros(8)]));
    expect(msg.code).toBe(ErrorCode.INFER_INVALID_BATCH_SIZE);
  });

  it('refuses to load a model it does not have', async () => {
    const { msg } = await controller.result(await sendAndId(load('no-such-model')));
    expect(msg.code).toBe(ErrorCode.LOAD_UNKNOWN_MODEL);
  });
});

describe('a worker with a small memory budget', () => {
  const controller = new FakeController();
  beforeAll(async () => {
    await controller.start();
    await controller.startWorker(['--simulate', '--memory-mb', '0.01']); // 10 KiB < the 26 KB model
  });
  afterAll(() => controller.close());

  it('refuses a LOAD beyond its budget instead of evicting', async () => {
    const action = load('mnist-cnn');
    await controller.send(action);
    const { msg } = await controller.result(action.actionId);
    expect(msg.code).toBe(ErrorCode.LOAD_INSUFFICIENT_MEMORY);
    expect(msg.message).toMatch(/free of/);
  });
});

describe('a real onnxruntime worker computes the right answer', () => {
  const controller = new FakeController();
  beforeAll(async () => {
    await controller.start();
    await controller.startWorker([]);
    const action = load('mnist-cnn');
    await controller.send(action);
    expect((await controller.result(action.actionId)).msg.code).toBe(0);
  });
  afterAll(() => controller.close());

  it('returns the golden output for the golden input inside a padded batch', async () => {
    const golden = decodeTensor(readFileSync('zoo/mnist-cnn/test_data/input_0.pb'));
    const expected = decodeTensor(readFileSync('zoo/mnist-cnn/test_data/output_0.pb'));
    const batch = new Float32Array(4 * 784);
    batch.set(golden, 0);
    batch.set(golden, 784 * 2);
    const now = monotonicNowNs();
    const action = infer(4, now, now + 5000 * MS);
    await controller.send(action, [bytesOf(batch)]);
    const { msg, tensors } = await controller.result(action.actionId);
    expect(msg.code).toBe(0);
    expect(tensors[0]!.shape).toEqual([4, 10]);
    const out = asFloat32(tensors[0]!.data);
    for (const row of [0, 2]) {
      for (let i = 0; i < 10; i++) expect(out[row * 10 + i]).toBeCloseTo(expected[i]!, 4);
    }
  });
});

describe('a worker given a broken model package', () => {
  const controller = new FakeController();
  const dir = mkdtempSync(join(tmpdir(), 'escapement-broken-'));
  beforeAll(async () => {
    // a copy of mnist-cnn whose ONNX file is cut in half
    mkdirSync(join(dir, 'mnist-cnn'));
    for (const f of [
      'manifest.json',
      'model.onnx',
      'model.opt.onnx',
      'segment_0.opt.onnx',
      ...[0, 1, 2, 3].flatMap((i) => [`ramp_${i}.onnx`, `ramp_${i}.opt.onnx`]),
    ])
      copyFileSync(join('models/mnist-cnn', f), join(dir, 'mnist-cnn', f));
    const bytes = readFileSync(join(dir, 'mnist-cnn', 'model.onnx'));
    writeFileSync(join(dir, 'mnist-cnn', 'model.onnx'), bytes.subarray(0, bytes.length >> 1));
    await controller.start();
    await controller.startWorker([], dir);
  });
  afterAll(async () => {
    await controller.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the LOAD with a precise message and keeps running', async () => {
    const action = load('mnist-cnn');
    await controller.send(action);
    const { msg } = await controller.result(action.actionId);
    expect(msg.code).toBe(ErrorCode.LOAD_FAILED);
    expect(msg.message).toMatch(/could not create a session/);
    const missing = load('no-such-model');
    await controller.send(missing);
    expect((await controller.result(missing.actionId)).msg.code).toBe(ErrorCode.LOAD_UNKNOWN_MODEL);
  });
});
