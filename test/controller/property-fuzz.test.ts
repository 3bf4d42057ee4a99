/**
 * Property-based fuzz of the controller's doors, in process with real sockets (fast-check, so a
 * failure shrinks to a small input): the client port, a registered worker that forges its results,
 * exits and heartbeats, the HTTP front, the package loader, and a worker loading damaged model
 * files. Over 11,000 generated inputs the controller must never throw in a handler, never answer
 * a client twice or not at all, never answer HTTP with a 500; the loader must refuse a bad
 * manifest with its own error, and a worker a damaged model with LOAD_FAILED.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import * as zmq from 'zeromq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscapementClient } from '../../client/escapement-client.js';
import { randomInputs } from '../../client/input-tensors.js';
import { ControllerServer } from '../../controller/controller-server.js';
import { HttpFront } from '../../controller/http-front.js';
import { monotonicNowNs } from '../../shared/clock.js';
import { decodeMessage, encodeMessage } from '../../shared/codec.js';
import { ErrorCode, errorName } from '../../shared/error-codes.js';
import { loadModelEntry, ManifestError } from '../../shared/model-manifest.js';
import type { Action } from '../../shared/protocol.js';
import { DeviceLoop, type DeviceOutcome } from '../../worker/device-loop.js';
import { OrtExecutor } from '../../worker/ort-executor.js';
import { hostilePack, RogueWorker } from '../support/rogue-worker.js';

const MODEL = 'mnist-cnn';
const entry = loadModelEntry('models', MODEL);
const SEED = 20_261_204;

/** Any value a hostile peer could pack: numbers of every kind, BigInts, strings, nesting. */
const hostileValue = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.string({ maxLength: 20 }),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.oneof(fc.double(), fc.integer(), fc.string({ maxLength: 5 })), { maxLength: 20 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.double(), fc.string({ maxLength: 5 })), { maxKeys: 5 }),
);

/** An honest answer to an action, as a real worker would send it. */
function honest(action: Action): Record<string, unknown> {
  const nowNs = monotonicNowNs();
  const timing = { receivedNs: nowNs, startNs: nowNs, endNs: nowNs, durationNs: 1e5, sentNs: nowNs };
  const header: Record<string, unknown> = { type: 'result', actionId: action.actionId, actionType: action.type, modelName: action.modelName, code: 0, timing };
  if (action.type === 'load') header.profile = action.batchSizes.map((b) => ({ batchSize: b, durationNs: 1e5, p99DurationNs: 2e5 }));
  if (action.type === 'infer') {
    const output = entry.manifest.outputs[0]!;
    header.outputs = [{ name: output.name, dtype: output.dtype, shape: [action.batchSize, ...output.shape.slice(1)] }];
  }
  return header;
}

function outputFrame(action: Action): Buffer[] {
  if (action.type !== 'infer') return [];
  const output = entry.manifest.outputs[0]!;
  return [Buffer.alloc(4 * action.batchSize * output.shape.slice(1).reduce((a, b) => a * b, 1))];
}

describe('property-based fuzz of the controller', () => {
  let server: ControllerServer;
  let http: HttpFront;
  let httpUrl: string;
  let worker: RogueWorker;
  let client: EscapementClient;
  let clientUrl: string;
  /** The forgery the worker sends ahead of its honest answer to the next INFER. */
  let forgery: { overrides: Record<string, unknown>; extra: Record<string, unknown>[] } | undefined;
  const scratch = mkdtempSync(join(tmpdir(), 'escapement-fuzz-'));

  beforeAll(async () => {
    server = new ControllerServer({
      host: '127.0.0.1',
      workerPort: 0,
      clientPort: 0,
      models: new Map([[MODEL, entry]]),
      scheduler: {},
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: 5000,
      preloadModels: [MODEL],
      exitMode: 'off',
      adjustRamps: false,
      adminToken: 'fuzzers-do-not-know-it',
      log: () => undefined,
    });
    const urls = await server.start();
    clientUrl = urls.clientUrl;
    http = new HttpFront(server, {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 1 << 20,
      defaultSloMs: 1000,
      metrics: async () => '',
      metricsContentType: 'text/plain',
    });
    httpUrl = await http.start();
    worker = new RogueWorker({
      workerUrl: urls.workerUrl,
      workerId: 'w0',
      answer: (action) => {
        const replies: Buffer[][] = [];
        if (action.type === 'infer' && forgery) {
          const header = { ...honest(action), ...forgery.overrides };
          replies.push([hostilePack(header), ...outputFrame(action)]);
          for (const extra of forgery.extra) replies.push([hostilePack({ actionId: action.actionId, modelName: action.modelName, ...extra })]);
        }
        replies.push([hostilePack(honest(action)), ...outputFrame(action)]);
        return replies;
      },
    });
    client = await EscapementClient.connect(clientUrl);
    for (let i = 0; i < 200 && server.core.modelState(MODEL) !== 'ready'; i++) await new Promise((r) => setTimeout(r, 20));
  });

  afterAll(async () => {
    await client?.close();
    await worker?.close();
    await http?.close();
    await server?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('answers every client message exactly once, whatever its header and frames (3,000 inputs)', async () => {
    const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: 3000 });
    dealer.connect(clientUrl);
    const valid = {
      type: 'submit',
      requestId: 'r',
      model: MODEL,
      sloMs: 1000,
      inputs: [{ name: entry.manifest.inputs[0]!.name, dtype: 'float32', shape: [1, 1, 28, 28] }],
    };
    const header = fc.record(
      {
        type: fc.oneof(fc.constant('submit'), fc.constant('status_query'), fc.constant('configure'), fc.constant('clock_ping'), fc.string({ maxLength: 12 })),
        requestId: fc.oneof(fc.string({ maxLength: 16 }), hostileValue),
        model: fc.oneof(fc.constant(MODEL), hostileValue),
        sloMs: hostileValue,
        deadlineNs: hostileValue,
        inputs: fc.oneof(
          fc.constant(valid.inputs),
          fc.array(
            fc.record(
              { name: hostileValue, dtype: hostileValue, shape: fc.oneof(fc.array(fc.integer({ min: -2, max: 1 << 20 }), { maxLength: 6 }), hostileValue) },
              { requiredKeys: [] },
            ),
            { maxLength: 3 },
          ),
          hostileValue,
        ),
        queryId: hostileValue,
        policy: hostileValue,
        exitMode: hostileValue,
      },
      { requiredKeys: [] },
    );
    const frames = fc.array(fc.oneof(fc.constant(3136), fc.integer({ min: 0, max: 8192 })), { maxLength: 3 });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(header, frames, async (fields, sizes) => {
        const msg: Record<string, unknown> = { ...valid, ...fields };
        if (typeof msg.requestId === 'string') msg.requestId = `${msg.requestId}#${n++}`; // never a duplicate of an earlier run
        await dealer.send([hostilePack(msg), ...sizes.map((s) => Buffer.alloc(s))]);
        const reply = decodeMessage((await dealer.receive()) as Buffer[]).header as { code?: number; type: string; requestId?: string };
        if (reply.code !== undefined) expect(errorName(reply.code)).not.toMatch(/^UNKNOWN_ERROR_/);
        // the answer is this message's own (a late or second answer to an earlier one would not be)
        if (msg.type === 'submit' && reply.type === 'response' && typeof msg.requestId === 'string' && reply.requestId !== '')
          expect(reply.requestId).toBe(msg.requestId);
      }),
      { numRuns: 3000, seed: SEED },
    );
    // nothing left over: the next reply is the answer to this status query
    await dealer.send(encodeMessage({ type: 'status_query', queryId: 'last' }));
    expect(decodeMessage((await dealer.receive()) as Buffer[]).header).toMatchObject({ type: 'status_reply', queryId: 'last' });
    dealer.close();
    expect(server.counters.handlerErrors).toBe(0);
  }, 120_000);

  it('survives a registered worker forging each INFER result and sending hostile exits and heartbeats (3,000 inputs)', async () => {
    const timing = fc.record(
      { receivedNs: hostileValue, startNs: hostileValue, endNs: hostileValue, durationNs: hostileValue, sentNs: hostileValue },
      { requiredKeys: [] },
    );
    const overrides = fc.record(
      {
        timing: fc.oneof(timing, hostileValue),
        code: hostileValue,
        actionType: hostileValue,
        outputs: hostileValue,
        outputRows: hostileValue,
        feedback: hostileValue,
        stages: hostileValue,
        profile: hostileValue,
        message: hostileValue,
      },
      { requiredKeys: [] },
    );
    const extra = fc.array(
      fc.oneof(
        fc.record(
          {
            type: fc.constant('exit'),
            siteId: hostileValue,
            rows: hostileValue,
            confidences: hostileValue,
            predictions: hostileValue,
            atNs: hostileValue,
            outputs: hostileValue,
          },
          { requiredKeys: ['type'] },
        ),
        fc.record(
          {
            type: fc.constant('heartbeat'),
            workerId: fc.oneof(fc.constant('w0'), hostileValue),
            epoch: hostileValue,
            numQueuedActions: hostileValue,
            usedMemoryBytes: hostileValue,
            loadedModels: hostileValue,
          },
          { requiredKeys: ['type'] },
        ),
      ),
      { maxLength: 2 },
    );
    await fc.assert(
      fc.asyncProperty(overrides, extra, async (o, e) => {
        forgery = { overrides: o, extra: e };
        const answer = await client.submit(MODEL, randomInputs(entry.manifest, 1), { sloMs: 2000, timeoutMs: 5000 });
        // a forged result the controller cannot refuse is taken (keys stop a rogue worker); an answer always comes
        expect(answer.code).not.toBe(ErrorCode.CLIENT_TIMEOUT); // no answer from the server
      }),
      { numRuns: 3000, seed: SEED },
    );
    forgery = undefined;
    expect(server.counters.handlerErrors).toBe(0);
    expect(client.answerCounts).toEqual({ duplicate: 0, unknown: 0 });
    expect((await client.submit(MODEL, randomInputs(entry.manifest, 2), { sloMs: 2000 })).status).toBe('OK');
  }, 180_000);

  it('never answers HTTP with a 500, whatever the infer body (2,000 inputs)', async () => {
    const tensor = fc.record(
      {
        name: fc.oneof(fc.constant(entry.manifest.inputs[0]!.name), fc.string({ maxLength: 8 })),
        datatype: fc.oneof(fc.constant('FP32'), fc.constant('INT64'), fc.string({ maxLength: 6 })),
        shape: fc.oneof(fc.constant([1, 1, 28, 28]), fc.array(fc.integer({ min: -1, max: 1 << 16 }), { maxLength: 5 })),
        data: fc.oneof(fc.array(fc.double(), { maxLength: 800 }), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof(
      fc.record(
        { inputs: fc.array(tensor, { maxLength: 2 }), parameters: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue(), { maxKeys: 3 }) },
        { requiredKeys: [] },
      ),
      fc.jsonValue(),
      fc.string({ maxLength: 200 }),
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const res = await fetch(`${httpUrl}/v2/models/${MODEL}/infer`, {
          method: 'POST',
          body: typeof b === 'string' ? b : JSON.stringify(b),
          headers: { 'content-type': 'application/json' },
        });
        const text = await res.text();
        expect(res.status, text).not.toBe(500);
        expect(() => JSON.parse(text)).not.toThrow();
      }),
      { numRuns: 2000, seed: SEED },
    );
    expect(server.counters.handlerErrors).toBe(0);
  }, 180_000);

  it('never answers HTTP with a 500 for binary-extension bodies whose header lies, or deeply nested JSON (1,000 inputs)', async () => {
    const name = entry.manifest.inputs[0]!.name;
    const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
    const request = fc.record({
      headerLength: fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.constant(Number.NaN), fc.string({ maxLength: 6 })),
      declaredSize: fc.oneof(fc.integer({ min: -5, max: 8000 }), fc.double(), fc.string({ maxLength: 4 })),
      shape: fc.oneof(fc.constant([1, 1, 28, 28]), fc.array(fc.integer({ min: -1, max: 64 }), { maxLength: 4 })),
      binaryBytes: fc.integer({ min: 0, max: 8000 }),
      nesting: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100_000 })),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        let body: Buffer;
        const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
        if (r.nesting > 0) {
          body = Buffer.from(`{"inputs": ${deep(r.nesting)}}`);
        } else {
          const json = Buffer.from(JSON.stringify({ inputs: [{ name, datatype: 'FP32', shape: r.shape, parameters: { binary_data_size: r.declaredSize } }] }));
          body = Buffer.concat([json, Buffer.alloc(r.binaryBytes)]);
          headers['inference-header-content-length'] = String(r.headerLength);
        }
        const res = await fetch(`${httpUrl}/v2/models/${MODEL}/infer`, { method: 'POST', body, headers });
        const text = await res.text();
        expect(res.status, text.slice(0, 200)).not.toBe(500);
      }),
      { numRuns: 1000, seed: SEED },
    );
    expect(server.counters.handlerErrors).toBe(0);
  }, 180_000);

  it('refuses a corrupt package manifest with its own error, never another (2,000 inputs)', () => {
    const manifest = JSON.parse(readFileSync('models/mnist-cnn/manifest.json', 'utf8')) as Record<string, unknown>;
    const keys = Object.keys(manifest);
    const folder = join(scratch, 'pkg');
    cpSync('models/mnist-cnn', folder, { recursive: true });
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom(...keys),
          fc.oneof(
            hostileValue.filter((v) => typeof v !== 'bigint'),
            fc.jsonValue(),
          ),
          { maxKeys: 3 },
        ),
        fc.subarray(keys),
        (changed, removed) => {
          const bad: Record<string, unknown> = { ...manifest, ...changed, name: 'pkg' };
          for (const k of removed) if (k !== 'name') delete bad[k];
          writeFileSync(join(folder, 'manifest.json'), JSON.stringify(bad));
          try {
            loadModelEntry(scratch, 'pkg');
          } catch (err) {
            expect(err, String(err)).toBeInstanceOf(ManifestError);
          }
        },
      ),
      { numRuns: 2000, seed: SEED },
    );
  });

  it('refuses a package declaring tensors too large for a message, and loads the rest (500 inputs)', () => {
    const manifest = JSON.parse(readFileSync('models/mnist-cnn/manifest.json', 'utf8')) as { inputs: { shape: number[] }[] };
    const folder = join(scratch, 'huge');
    cpSync('models/mnist-cnn', folder, { recursive: true });
    let refused = 0;
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 2 ** 31 })), { minLength: 1, maxLength: 4 }), (dims) => {
        const input = { ...manifest.inputs[0]!, shape: [-1, ...dims] };
        writeFileSync(join(folder, 'manifest.json'), JSON.stringify({ ...manifest, name: 'huge', inputs: [input] }));
        const rowBytes = dims.reduce((n, d) => n * d, 4);
        try {
          loadModelEntry(scratch, 'huge');
          expect(rowBytes).toBeLessThanOrEqual(64 * 2 ** 20);
        } catch (err) {
          expect(err, String(err)).toBeInstanceOf(ManifestError);
          expect(String(err)).toMatch(/more than a message may carry/);
          expect(rowBytes).toBeGreaterThan(64 * 2 ** 20);
          refused++;
        }
      }),
      { numRuns: 500, seed: SEED },
    );
    expect(refused).toBeGreaterThan(50);
  });
});

describe('property-based fuzz of a worker loading a damaged package', () => {
  it('refuses a truncated or corrupted model file with LOAD_FAILED, and loads the intact one after (200 inputs)', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'escapement-onnx-fuzz-'));
    try {
      const folder = join(scratch, MODEL);
      cpSync(`models/${MODEL}`, folder, { recursive: true });
      const intact = readFileSync(join(folder, 'model.onnx'));
      const outcomes: DeviceOutcome[] = [];
      const loop = new DeviceLoop(
        new OrtExecutor({ device: 'cpu', intraOpNumThreads: 1 }),
        { modelDir: scratch, memoryBudgetBytes: 2 ** 30, nowNs: monotonicNowNs, startAt: () => ({ cancel: () => undefined }) },
        { outcome: (o) => outcomes.push(o), exit: () => undefined },
      );
      let actionId = 1;
      const loadOnce = async (): Promise<DeviceOutcome> => {
        const before = outcomes.length;
        loop.submit({
          action: {
            type: 'load',
            actionId: actionId++,
            earliestNs: 0,
            latestNs: 0,
            expectedDurationNs: 0,
            expectedStartNs: 0,
            modelName: MODEL,
            batchSizes: [1],
          },
          tensors: [],
          receivedLocalNs: 0,
          earliestLocalNs: 0,
          latestLocalNs: Number.MAX_SAFE_INTEGER,
        });
        for (let i = 0; i < 500 && outcomes.length === before; i++) await new Promise((r) => setTimeout(r, 2));
        return outcomes[before]!;
      };
      const damage = fc.oneof(
        fc.record({ cutAt: fc.integer({ min: 0, max: intact.length - 1 }) }),
        fc.record({
          flips: fc.array(fc.record({ at: fc.integer({ min: 0, max: intact.length - 1 }), byte: fc.integer({ min: 0, max: 255 }) }), {
            minLength: 1,
            maxLength: 64,
          }),
        }),
      );
      await fc.assert(
        fc.asyncProperty(damage, async (d) => {
          const bytes = Buffer.from(intact);
          let damaged: Buffer = bytes;
          if ('cutAt' in d) damaged = bytes.subarray(0, d.cutAt);
          else for (const f of d.flips) bytes[f.at] = f.byte;
          writeFileSync(join(folder, 'model.onnx'), damaged);
          const outcome = await loadOnce();
          // a flip can land in a weight and leave a valid model: then it loads; otherwise LOAD_FAILED, never a crash
          expect([ErrorCode.OK, ErrorCode.LOAD_FAILED]).toContain(outcome.code);
        }),
        { numRuns: 200, seed: SEED },
      );
      writeFileSync(join(folder, 'model.onnx'), intact);
      expect((await loadOnce()).code).toBe(ErrorCode.OK);
      loop.close();
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 120_000);
});
