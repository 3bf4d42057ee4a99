/**
 * The real thing: a controller process, two worker processes running onnxruntime, and the client
 * library, over zeromq on loopback with ports chosen at run time.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import * as zmq from 'zeromq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLeaks } from '../support/leak-check.js';
import { EscapementClient, type InferResponse } from '../../client/escapement-client.js';
import { randomInputs } from '../../client/input-tensors.js';
import { runOpenLoop } from '../../loadgen/open-loop.js';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { decodeMessage, encodeMessage } from '../../shared/codec.js';
import { ErrorCode } from '../../shared/error-codes.js';
import { loadModelEntry } from '../../shared/model-manifest.js';
import type { ResponseMsg } from '../../shared/protocol.js';
import { asFloat32, bytesOf } from '../../shared/tensor.js';
import { decodeTensor } from '../../onnx/onnx-proto.js';

const MODEL = 'mnist-cnn';
const manifest = loadModelEntry('models', MODEL).manifest;
const logDir = mkdtempSync(join(tmpdir(), 'escapement-it-'));

function expectAnsweredOnce(responses: (InferResponse | undefined)[], numSubmitted: number): void {
  expect(responses.filter((r) => r !== undefined)).toHaveLength(numSubmitted);
  const ids = new Set(responses.map((r) => r!.requestId));
  expect(ids.size).toBe(numSubmitted);
}

describe('controller + 2 onnxruntime workers + client on loopback', () => {
  let cluster: LocalCluster;
  let client: EscapementClient;
  checkLeaks(() => [cluster]);

  beforeAll(async () => {
    cluster = await LocalCluster.start({ numWorkers: 2, modelDir: 'models', preload: [MODEL], controllerArgs: ['--log-dir', logDir] });
    client = await EscapementClient.connect(cluster.clientUrl);
    await cluster.waitUntilServing(client, [MODEL]);
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
    for (const w of cluster?.workers.values() ?? []) expect(w.child.exitCode !== null || w.child.signalCode !== null).toBe(true);
    rmSync(logDir, { recursive: true, force: true });
  });

  it.runIf(process.platform === 'linux' && availableParallelism() > 1)("pins each worker's inference thread alone, each to a CPU of its own", () => {
    const cpusOfThreads = (pid: number) =>
      readdirSync(`/proc/${pid}/task`).map((tid) => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))![1]!);
    const all = cpusOfThreads(process.pid)[0]; // this process was not pinned
    const pinned = cluster
      .processes()
      .filter((p) => p.name !== 'controller')
      .map((p) => cpusOfThreads(p.pid).filter((cpus) => cpus !== all));
    expect(pinned.map((p) => p.length)).toEqual([1, 1]);
    expect(pinned[0]![0]).not.toBe(pinned[1]![0]);
  });

  it('answers 500 requests with deadlines exactly once each, correctly', async () => {
    const golden = decodeTensor(readFileSync('zoo/mnist-cnn/test_data/input_0.pb'));
    const expected = decodeTensor(readFileSync('zoo/mnist-cnn/test_data/output_0.pb'));
    const goldenInputs = [{ name: 'Input3', dtype: 'float32' as const, shape: [1, 1, 28, 28], data: bytesOf(golden) }];
    const result = await runOpenLoop(client, {
      model: MODEL,
      numRequests: 500,
      ratePerSec: 400,
      sloMs: 100,
      seed: 3,
      inputsFor: (i) => (i % 50 === 0 ? goldenInputs : randomInputs(manifest, i + 1)),
    });
    expectAnsweredOnce(result.responses, 500);
    const ok = result.responses.filter((r) => r.status === 'OK');
    expect(ok.length).toBeGreaterThan(450); // a generous SLO on an idle-ish machine
    expect(result.responses.filter((r) => r.status === 'ERROR')).toHaveLength(0);
    for (let i = 0; i < 500; i += 50) {
      const r = result.responses[i]!;
      if (r.status !== 'OK') continue;
      const out = asFloat32(r.outputs[0]!.data);
      expect(Math.max(...Array.from(out, (v, k) => Math.abs(v - expected[k]!)))).toBeLessThan(1e-4);
    }
    expect(new Set(ok.map((r) => r.workerId)).size).toBe(2); // both workers served
    // each worker's own start delay (hop and dispatch), learned from its real starts: not the configured 0.5 ms
    const status = await client.status();
    for (const w of status.workers) {
      expect(w.startDelayMs).toBeGreaterThan(0);
      expect(w.startDelayMs).toBeLessThan(10);
      expect(w.startDelayMs).not.toBe(0.5);
    }
  });

  it('records predicted and actual durations for every action', async () => {
    await new Promise((r) => setTimeout(r, 300)); // let the log stream flush
    const lines = readFileSync(join(logDir, 'actions.csv'), 'utf8').trim().split('\n');
    const header = lines[0]!.split(',');
    const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], v])));
    const infers = rows.filter((r) => r.action_type === 'infer' && r.code === '0');
    expect(infers.length).toBeGreaterThan(10);
    for (const r of infers) {
      expect(r.batch_size).toBe(r.num_requests); // exact batches: no padding rows
      expect(Number(r.expected_duration_ms)).toBeGreaterThan(0);
      expect(Number(r.actual_duration_ms)).toBeGreaterThan(0);
      // the worker's own timing of its stage (a plain model: one), inside the action's duration
      const [name, ms] = r.stages!.split(':');
      expect(name).toBe('model');
      expect(Number(ms)).toBeGreaterThan(0);
      expect(Number(ms)).toBeLessThanOrEqual(Number(r.actual_duration_ms));
      // and the stage as predicted: the action's whole expected duration
      const [expectedName, expectedMs] = r.expected_stages!.split(':');
      expect(expectedName).toBe('model');
      expect(Math.abs(Number(expectedMs) - Number(r.expected_duration_ms))).toBeLessThanOrEqual(0.001);
    }
    expect(rows.some((r) => r.action_type === 'load')).toBe(true);
    const requests = readFileSync(join(logDir, 'requests.csv'), 'utf8').trim().split('\n');
    expect(requests.length).toBeGreaterThan(500);
    // every admitted request carries the completion admission predicted, after its arrival
    const requestHeader = requests[0]!.split(',');
    const answered = requests
      .slice(1)
      .map((l) => Object.fromEntries(l.split(',').map((v, i) => [requestHeader[i], v])))
      .filter((r) => r.status === 'OK');
    expect(answered.length).toBeGreaterThan(100);
    for (const r of answered) expect(Number(r.predicted_complete_ms)).toBeGreaterThan(Number(r.arrival_ms));
    // and how many queued requests were ahead of it
    for (const r of answered) expect(r.rows_ahead).toMatch(/^\d+$/);
  });

  it('rejects bad input with a clear code and keeps serving', async () => {
    const slo = { sloMs: 500 };
    const good = randomInputs(manifest, 1);
    const wrongShape = [{ ...good[0]!, shape: [1, 1, 28, 27], data: new Uint8Array(28 * 27 * 4) }];
    const wrongDtype = [{ ...good[0]!, dtype: 'int32' as const }];
    const responses = await Promise.all([
      client.submit('no-such-model', good, slo),
      client.submit(MODEL, wrongShape, slo),
      client.submit(MODEL, wrongDtype, slo),
      client.submit(MODEL, [], slo),
      client.submit(MODEL, good, { sloMs: -5 }),
      client.submit(MODEL, good, { sloMs: 0.01 }),
    ]);
    expect(responses.map((r) => [r.status, r.code])).toEqual([
      ['REJECTED', ErrorCode.UNKNOWN_MODEL],
      ['REJECTED', ErrorCode.INVALID_INPUT],
      ['REJECTED', ErrorCode.INVALID_INPUT],
      ['REJECTED', ErrorCode.INVALID_INPUT],
      ['REJECTED', ErrorCode.INVALID_DEADLINE],
      ['REJECTED', ErrorCode.CANNOT_MEET_DEADLINE],
    ]);
    for (const r of responses) expect(r.message).toBeTruthy();
    expect((await client.submit(MODEL, good, slo)).status).toBe('OK');
  });

  it('answers malformed frames and duplicate request ids from a raw socket without crashing', async () => {
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(cluster.clientUrl);
    const receive = async (): Promise<ResponseMsg> => decodeMessage((await dealer.receive()) as Buffer[]).header as ResponseMsg;
    try {
      await dealer.send([Buffer.from([0xc1, 0x00])]);
      expect(await receive()).toMatchObject({ status: 'REJECTED', code: ErrorCode.MALFORMED_MESSAGE });
      await dealer.send([
        pack({ type: 'submit', requestId: 'x1', model: MODEL, sloMs: 100, inputs: [{ name: 'Input3', dtype: 'float32', shape: [1, 1, 28, 28] }] }),
        Buffer.alloc(10),
      ]);
      expect(await receive()).toMatchObject({ requestId: 'x1', status: 'REJECTED', code: ErrorCode.MALFORMED_MESSAGE });
      const input = randomInputs(manifest, 9)[0]!;
      const submit = (id: string) =>
        encodeMessage({ type: 'submit', requestId: id, model: MODEL, sloMs: 2000, inputs: [{ name: input.name, dtype: input.dtype, shape: input.shape }] }, [
          input.data,
        ]);
      await dealer.send(submit('dup'));
      await dealer.send(submit('dup'));
      const answers = [await receive(), await receive()];
      expect(answers.map((a) => a.status).sort()).toEqual(['OK', 'REJECTED']);
      expect(answers.find((a) => a.status === 'REJECTED')!.code).toBe(ErrorCode.DUPLICATE_REQUEST_ID);
    } finally {
      dealer.close();
    }
    expect((await client.submit(MODEL, randomInputs(manifest, 2), { sloMs: 500 })).status).toBe('OK');
  });

  it('loses no request when a worker is killed mid-run, and keeps serving on the other', async () => {
    const numRequests = 600;
    const run = runOpenLoop(client, { model: MODEL, numRequests, ratePerSec: 300, sloMs: 200, seed: 11, inputsFor: (i) => randomInputs(manifest, i) });
    await new Promise((r) => setTimeout(r, 700));
    cluster.signalWorker('worker-1', 'SIGKILL');
    const result = await run;
    expectAnsweredOnce(result.responses, numRequests);
    // Requests on the dead worker are re-planned or answered WORKER_LOST; none hang.
    for (const r of result.responses.filter((x) => x.status === 'ERROR')) expect(r.code).toBe(ErrorCode.WORKER_LOST);
    const late = result.responses.slice(-100);
    expect(late.every((r) => (r.status === 'OK' ? r.workerId === 'worker-0' : true))).toBe(true);
    expect(late.filter((r) => r.status === 'OK').length).toBeGreaterThan(80);
    const status = await client.status();
    expect(status.workers.map((w) => w.id)).toEqual(['worker-0']);
  });
});
