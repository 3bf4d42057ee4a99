/**
 * A real onnxruntime worker running the bundled fmnist-resnet package as a chain with ramps,
 * driven by a fake controller: exits are answered during the batch, release mode keeps every
 * final output identical to the plain model, compact mode drops exited rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageInputs, loadDataset } from '../../prepare/dataset.js';
import { monotonicNowNs } from '../../shared/clock.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import type { EarlyExitPlan, InferAction } from '../../shared/protocol.js';
import { asFloat32, bytesOf } from '../../shared/tensor.js';
import { FakeController } from '../support/fake-controller.js';

const MS = 1_000_000;
const MODEL = 'fmnist-resnet';
const ee = loadModelEntry('models', MODEL).manifest.earlyExit!;
const dataset = loadDataset('datasets/fashion-mnist-test');
let nextActionId = 1;

function infer(batchSize: number, numRequests: number, earlyExit?: EarlyExitPlan): InferAction {
  const now = monotonicNowNs();
  const action: InferAction = {
    type: 'infer',
    actionId: nextActionId++,
    earliestNs: now,
    latestNs: now + 10_000 * MS,
    expectedDurationNs: MS,
    expectedStartNs: now,
    modelName: MODEL,
    batchSize,
    numRequests,
    inputs: [{ name: 'pixels', dtype: 'float32', shape: [batchSize, 1, 28, 28] }],
  };
  if (earlyExit) action.earlyExit = earlyExit;
  return action;
}

/** Samples 1000.. of the serving part, padded with zeros up to batchSize. */
function batchInput(batchSize: number, numRequests: number): Uint8Array {
  const data = new Float32Array(batchSize * 784);
  data.set(imageInputs(dataset).subarray(1000 * 784, (1000 + numRequests) * 784));
  return bytesOf(data);
}

function argmaxRows(data: Float32Array, k: number): number[] {
  return Array.from({ length: data.length / k }, (_, r) => {
    const row = Array.from(data.subarray(r * k, (r + 1) * k));
    return row.indexOf(Math.max(...row));
  });
}

describe('a worker running an early-exit package', () => {
  const controller = new FakeController();
  // Thresholds low enough that plenty of rows exit at each ramp.
  const ramps = ee.chosenRamps.map((siteId) => ({ siteId, threshold: 0.8 }));

  beforeAll(async () => {
    await controller.start();
    await controller.startWorker([]);
    const now = monotonicNowNs();
    await controller.send({
      type: 'load',
      actionId: 0,
      earliestNs: now,
      latestNs: now + 60_000 * MS,
      expectedDurationNs: MS,
      expectedStartNs: now,
      modelName: MODEL,
      batchSizes: [1, 16],
    });
    expect((await controller.result(0)).msg.code).toBe(0);
  });
  afterAll(() => controller.close());

  async function vanilla(batchSize: number, numRequests: number): Promise<Float32Array> {
    const action = infer(batchSize, numRequests);
    await controller.send(action, [batchInput(batchSize, numRequests)]);
    const { msg, tensors } = await controller.result(action.actionId);
    expect(msg.code).toBe(0);
    return asFloat32(tensors[0]!.data);
  }

  it('release mode: exits are answered during the batch and every final output equals the plain model', async () => {
    const plain = await vanilla(16, 13);
    const action = infer(16, 13, { mode: 'release', ramps, keepRows: [] });
    await controller.send(action, [batchInput(16, 13)]);
    const { msg, tensors, atNs: resultAtNs } = await controller.result(action.actionId);
    expect(msg.code).toBe(0);
    const exits = controller.exits.filter((e) => e.msg.actionId === action.actionId);
    const exitedRows = exits.flatMap((e) => e.msg.rows);
    expect(exitedRows.length).toBeGreaterThan(0);
    expect(new Set(exitedRows).size).toBe(exitedRows.length); // each row exits at most once
    expect(exitedRows.every((r) => r < 13)).toBe(true); // padding never answers
    for (const e of exits) {
      expect(e.atNs).toBeLessThanOrEqual(resultAtNs); // before the batch ends
      expect(e.msg.confidences.every((c) => c >= 0.8)).toBe(true);
      const probs = asFloat32(e.tensors[0]!.data);
      expect(argmaxRows(probs, ee.numClasses)).toEqual(e.msg.predictions); // the answer is the ramp's prediction
    }
    expect(msg.outputRows).toEqual(Array.from({ length: 16 }, (_, i) => i));
    const final = asFloat32(tensors[0]!.data);
    for (let i = 0; i < 13 * ee.numClasses; i++) expect(final[i]).toBeCloseTo(plain[i]!, 3);
    expect(msg.feedback!.finalPredictions).toEqual(argmaxRows(plain, ee.numClasses).slice(0, 13));
    expect(msg.feedback!.siteIds).toEqual(ee.chosenRamps);
  });

  it("release on the fused model (a RAMPS with fused first): nobody answered early, outputs equal the plain model, feedback equals the chain's", async () => {
    const now = monotonicNowNs();
    const rampsAction = {
      type: 'ramps' as const,
      actionId: nextActionId++,
      earliestNs: now,
      latestNs: now + 60_000 * MS,
      expectedDurationNs: MS,
      expectedStartNs: now,
      modelName: MODEL,
      siteIds: ee.chosenRamps,
      fused: true,
    };
    await controller.send(rampsAction);
    expect((await controller.result(rampsAction.actionId)).msg.code).toBe(0);
    const plain = await vanilla(16, 13);
    const chain = infer(16, 13, { mode: 'release', ramps, keepRows: [] });
    await controller.send(chain, [batchInput(16, 13)]);
    const chainFeedback = (await controller.result(chain.actionId)).msg.feedback!;
    const action = infer(16, 13, { mode: 'release', ramps, keepRows: [], fused: true });
    await controller.send(action, [batchInput(16, 13)]);
    const { msg, tensors } = await controller.result(action.actionId);
    expect(msg.code).toBe(0);
    expect(controller.exits.filter((e) => e.msg.actionId === action.actionId)).toEqual([]);
    expect(msg.stages!.map((s) => s.name)).toEqual(['fused']);
    const final = asFloat32(tensors[0]!.data);
    expect(final.length).toBe(16 * ee.numClasses);
    for (let i = 0; i < 13 * ee.numClasses; i++) expect(final[i]).toBeCloseTo(plain[i]!, 3);
    const feedback = msg.feedback!;
    expect(feedback.siteIds).toEqual(ee.chosenRamps);
    expect(feedback.finalPredictions).toEqual(chainFeedback.finalPredictions);
    expect(feedback.predictions).toEqual(chainFeedback.predictions);
    feedback.confidences.forEach((perRow, s) => perRow.forEach((c, row) => expect(c).toBeCloseTo(chainFeedback.confidences[s]![row]!, 4)));
    // Some rows would have exited: the feedback shows what the ramps saw although nobody left.
    expect(feedback.confidences.flat().some((c) => c >= 0.8)).toBe(true);
  });

  it('compact mode: exited rows leave the batch, the rest (and the kept sample) match the plain model', async () => {
    const plain = await vanilla(16, 16);
    const action = infer(16, 16, { mode: 'compact', ramps, keepRows: [0] });
    await controller.send(action, [batchInput(16, 16)]);
    const { msg, tensors } = await controller.result(action.actionId);
    expect(msg.code).toBe(0);
    const exited = new Set(controller.exits.filter((e) => e.msg.actionId === action.actionId).flatMap((e) => e.msg.rows));
    expect(exited.size).toBeGreaterThan(0);
    const rows = msg.outputRows!;
    expect(rows.length).toBeLessThan(16);
    expect(rows).toContain(0); // the monitoring sample runs to the end
    for (const r of rows) if (r !== 0) expect(exited.has(r)).toBe(false);
    const final = asFloat32(tensors[0]!.data);
    rows.forEach((row, i) => {
      for (let c = 0; c < ee.numClasses; c++) expect(final[i * ee.numClasses + c]).toBeCloseTo(plain[row * ee.numClasses + c]!, 3);
    });
    const finals = msg.feedback!.finalPredictions;
    for (let r = 0; r < 16; r++) expect(finals[r]).toBe(rows.includes(r) ? argmaxRows(plain, ee.numClasses)[r] : -1);
  });

  it("runs a ramp set other than the package's by cutting its own chain", async () => {
    const other = [ee.sites[2]!.id, ee.sites.at(-1)!.id].map((siteId) => ({ siteId, threshold: 1.01 })); // never exit
    const plain = await vanilla(16, 4);
    const action = infer(16, 4, { mode: 'release', ramps: other, keepRows: [] });
    await controller.send(action, [batchInput(16, 4)]);
    const { msg, tensors } = await controller.result(action.actionId);
    expect(msg.code).toBe(0);
    expect(msg.feedback!.siteIds).toEqual(other.map((r) => r.siteId));
    const final = asFloat32(tensors[0]!.data);
    for (let i = 0; i < 4 * ee.numClasses; i++) expect(final[i]).toBeCloseTo(plain[i]!, 3);
  });
});
