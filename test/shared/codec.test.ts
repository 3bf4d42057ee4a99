import { pack, Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, isProtocolError } from '../../shared/codec.js';
import { ErrorCode } from '../../shared/error-codes.js';
import type { AnyMessage } from '../../shared/protocol.js';
import type { ControllerStatus } from '../../shared/status-schema.js';
import { bytesOf } from '../../shared/tensor.js';

const window = { actionId: 7, earliestNs: 1e12, latestNs: 1e12 + 5e6, expectedDurationNs: 3e5, expectedStartNs: 1e12 + 1e5 };
const timing = { receivedNs: 1, startNs: 2, endNs: 3, durationNs: 1, sentNs: 4 };
const floats = new Float32Array([1.5, -2.25, 3.125, Number.MAX_VALUE > 0 ? 1e-30 : 0, 42, 0.1]);

const cases: { name: string; msg: AnyMessage; tensors?: Uint8Array[] }[] = [
  { name: 'hello', msg: { type: 'hello', v: 1, workerId: 'w0', device: 'cpu', memoryBudgetBytes: 2 ** 30, pid: 123, hostname: 'h', epoch: 1 } },
  { name: 'hello_ack', msg: { type: 'hello_ack', v: 1, workerId: 'w0', heartbeatIntervalMs: 200, epoch: 1 } },
  { name: 'reregister', msg: { type: 'reregister', reason: 'unknown', epoch: 1 } },
  { name: 'heartbeat', msg: { type: 'heartbeat', workerId: 'w0', epoch: 1, numQueuedActions: 2, usedMemoryBytes: 5, loadedModels: ['m'] } },
  { name: 'clock_ping', msg: { type: 'clock_ping', seq: 1, t0Ns: 123456789 } },
  { name: 'clock_pong', msg: { type: 'clock_pong', seq: 1, t0Ns: 1, t1Ns: 2, t2Ns: 3 } },
  { name: 'load', msg: { type: 'load', ...window, modelName: 'm', batchSizes: [1, 2, 4] } },
  { name: 'unload', msg: { type: 'unload', ...window, modelName: 'm' } },
  {
    name: 'infer with a tensor',
    msg: { type: 'infer', ...window, modelName: 'm', batchSize: 2, numRequests: 1, inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }] },
    tensors: [bytesOf(floats)],
  },
  {
    name: 'result with outputs and a profile',
    msg: {
      type: 'result',
      actionId: 7,
      actionType: 'infer',
      modelName: 'm',
      code: 0,
      timing,
      outputs: [{ name: 'y', dtype: 'float32', shape: [2, 3] }],
      profile: [{ batchSize: 1, durationNs: 5, p99DurationNs: 6 }],
    },
    tensors: [bytesOf(floats)],
  },
  {
    name: 'result with an error',
    msg: { type: 'result', actionId: 7, actionType: 'infer', modelName: 'm', code: ErrorCode.INFER_TOO_LATE, message: 'late', timing },
  },
  {
    name: 'submit',
    msg: { type: 'submit', requestId: 'r1', model: 'm', sloMs: 50, inputs: [{ name: 'x', dtype: 'float32', shape: [1, 6] }] },
    tensors: [bytesOf(floats)],
  },
  {
    name: 'response',
    msg: {
      type: 'response',
      requestId: 'r1',
      status: 'OK',
      code: 0,
      arrivalNs: 1,
      deadlineNs: 2,
      completeNs: 3,
      outputs: [{ name: 'y', dtype: 'int64', shape: [1, 1] }],
    },
    tensors: [new Uint8Array(8)],
  },
  { name: 'status_query', msg: { type: 'status_query', queryId: 'q' } },
  { name: 'status_reply', msg: { type: 'status_reply', queryId: 'q', status: sampleStatus() } },
];

/** A status as a controller with one worker and an early-exit model reports it (NaN: no estimate yet). */
function sampleStatus(): ControllerStatus {
  return {
    uptimeMs: 1234.5,
    numPending: 2,
    eventLoopDelayMs: { p50: 0.1, p99: 2.5, max: 7 },
    memoryRssBytes: 123e6,
    counters: { submitted: 10, answered: 8, byStatus: { OK: 7, REJECTED: 1 }, malformed: 0, handlerErrors: 0 },
    adjustRamps: true,
    telemetry: { stoppedBecause: null, droppedRows: 0 },
    exits: [
      {
        model: 'm',
        siteIds: [2, 5],
        thresholds: [0.9, 1.01],
        exitsPerRamp: [3, 1],
        fullAnswers: 4,
        windowAgreement: Number.NaN,
        numSamples: 8,
        numRetunes: 1,
        recentChanges: [{ atSample: 8, kind: 'thresholds', reason: 'retune', before: [0.95, 1.01], after: [0.9, 1.01] }],
        suspectsDrift: false,
      },
    ],
    predictions: [{ model: 'm', stage: 'infer', numSamples: 5, p50: 3.2, p99: 9.1, bias: -0.4, unit: '%' }],
    numQueued: 2,
    models: [{ name: 'm', numQueued: 2 }],
    workers: [
      {
        id: 'w0',
        memoryBudgetBytes: 1e9,
        usedBytes: 1e6,
        freeInMs: 0.5,
        startDelayMs: 0.3,
        numInflight: 1,
        models: [{ name: 'm', state: 'loaded' }],
        estimatesMs: { m: { 1: 0.4, 8: Number.NaN }, text: { T16: { 1: 0.7 } } },
      },
    ],
  };
}

function roundTrip(msg: AnyMessage, tensors: Uint8Array[] = []) {
  // Copy frames as the wire would (fresh buffers at offset 0).
  return decodeMessage(encodeMessage(msg, tensors).map((f) => Buffer.from(f)));
}

describe('protocol round trip', () => {
  it.each(cases)('$name survives encode/decode unchanged', ({ msg, tensors }) => {
    const decoded = roundTrip(msg, tensors);
    expect(decoded.header).toEqual(msg);
    expect(decoded.tensors.map((t) => Buffer.from(t.data))).toEqual((tensors ?? []).map((t) => Buffer.from(t)));
  });

  it('keeps float32 tensor bits exact (msgpackr <= 2.1.3 corrupted typed arrays)', () => {
    const decoded = roundTrip(cases.find((c) => c.name === 'infer with a tensor')!.msg, [bytesOf(floats)]);
    const t = decoded.tensors[0]!;
    expect(Array.from(new Float32Array(t.data.buffer, t.data.byteOffset, 6))).toEqual(Array.from(floats));
  });
});

describe('malformed messages are refused with a stable code', () => {
  const submit = cases.find((c) => c.name === 'submit')!;
  const bad: { name: string; frames: () => Buffer[]; code: number }[] = [
    { name: 'no frames at all', frames: () => [], code: ErrorCode.MALFORMED_MESSAGE },
    { name: 'a header that is not msgpack', frames: () => [Buffer.from([0xc1, 0xff, 0x00])], code: ErrorCode.MALFORMED_MESSAGE },
    { name: 'a header that is not a map', frames: () => [pack([1, 2, 3])], code: ErrorCode.MALFORMED_MESSAGE },
    { name: 'an unknown message type', frames: () => [pack({ type: 'launch_missiles' })], code: ErrorCode.UNKNOWN_MESSAGE_TYPE },
    { name: 'a missing field', frames: () => [pack({ type: 'submit', model: 'm', inputs: [] })], code: ErrorCode.MALFORMED_MESSAGE },
    { name: 'a field of the wrong type', frames: () => [pack({ type: 'clock_ping', seq: 'one', t0Ns: 1 })], code: ErrorCode.MALFORMED_MESSAGE },
    {
      name: 'a tensor with an unknown dtype',
      frames: () => [pack({ ...submit.msg, inputs: [{ name: 'x', dtype: 'float8', shape: [1] }] }), Buffer.alloc(1)],
      code: ErrorCode.MALFORMED_MESSAGE,
    },
    {
      name: 'a negative dimension',
      frames: () => [pack({ ...submit.msg, inputs: [{ name: 'x', dtype: 'float32', shape: [1, -6] }] }), Buffer.alloc(24)],
      code: ErrorCode.MALFORMED_MESSAGE,
    },
    { name: 'fewer tensor frames than declared', frames: () => encodeMessage(submit.msg).map((f) => Buffer.from(f)), code: ErrorCode.MALFORMED_MESSAGE },
    { name: 'a frame shorter than its declared size', frames: () => [encodeMessage(submit.msg)[0]!, Buffer.alloc(23)], code: ErrorCode.MALFORMED_MESSAGE },
    {
      name: 'a huge declared tensor',
      frames: () => [pack({ ...submit.msg, inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2 ** 40] }] }), Buffer.alloc(4)],
      code: ErrorCode.MESSAGE_TOO_LARGE,
    },
    { name: 'another protocol version', frames: () => [pack({ ...cases[0]!.msg, v: 99 })], code: ErrorCode.UNSUPPORTED_PROTOCOL_VERSION },
  ];

  it.each(bad)('$name', ({ frames, code }) => {
    let caught: unknown;
    try {
      decodeMessage(frames());
    } catch (err) {
      caught = err;
    }
    expect(isProtocolError(caught)).toBe(true);
    expect((caught as { code: number }).code).toBe(code);
  });

  it('survives a thousand random byte strings without throwing anything but ProtocolError', () => {
    let seed = 42;
    const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    for (let i = 0; i < 1000; i++) {
      const frame = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
      try {
        decodeMessage([frame]);
      } catch (err) {
        expect(isProtocolError(err)).toBe(true);
      }
    }
  });
});

describe('nested fields are checked deeply (a registered worker is still a peer)', () => {
  const hostile = new Packr({ useRecords: false, moreTypes: true, structuredClone: true });
  const result = (fields: Record<string, unknown>) => ({ type: 'result', actionId: 7, actionType: 'infer', modelName: 'm', code: 0, timing, ...fields });
  const refused: { name: string; header: Record<string, unknown> }[] = [
    { name: 'a 64-bit integer (BigInt) time', header: result({ timing: { ...timing, endNs: 2n ** 62n } }) },
    { name: 'a NaN duration', header: result({ timing: { ...timing, durationNs: Number.NaN } }) },
    { name: 'a negative time', header: result({ timing: { ...timing, startNs: -1 } }) },
    { name: 'an end before the start', header: result({ timing: { ...timing, startNs: 10, endNs: 5 } }) },
    { name: 'a duration over an hour', header: result({ timing: { ...timing, durationNs: 4e12 } }) },
    { name: 'timing missing a field', header: result({ timing: { receivedNs: 1 } }) },
    { name: 'a Date extension', header: result({ timing: { ...timing, sentNs: new Date() } }) },
    { name: 'a Set extension', header: result({ timing: new Set([1]) }) },
    {
      name: 'an Error extension deep in feedback',
      header: result({ feedback: { siteIds: [1], confidences: [[0.5]], predictions: [[1]], finalPredictions: [new Error('x')] } }),
    },
    { name: 'binary where a number goes', header: result({ stages: [{ name: 's', durationNs: new Uint8Array(8) }] }) },
    {
      name: 'feedback lists of unequal length',
      header: result({ feedback: { siteIds: [1, 2], confidences: [[0.5]], predictions: [[1]], finalPredictions: [1] } }),
    },
    { name: 'a confidence above 1', header: result({ feedback: { siteIds: [1], confidences: [[1.5]], predictions: [[1]], finalPredictions: [1] } }) },
    { name: 'a profile with batch size 0', header: result({ profile: [{ batchSize: 0, durationNs: 1, p99DurationNs: 1 }] }) },
    { name: 'output rows that are not row indices', header: result({ outputRows: ['x'] }) },
    { name: 'outputs without one row per output row', header: result({ outputRows: [0, 1], outputs: [{ name: 'y', dtype: 'float32', shape: [3, 2] }] }) },
    { name: 'an unknown action type', header: result({ actionType: 'format-disk' }) },
    {
      name: 'an exit row out of range',
      header: { type: 'exit', actionId: 1, modelName: 'm', siteId: 0, rows: [1e9], confidences: [0.9], predictions: [1], atNs: 1, outputs: [] },
    },
    {
      name: 'exit confidences not one per row',
      header: { type: 'exit', actionId: 1, modelName: 'm', siteId: 0, rows: [0, 1], confidences: [0.9], predictions: [1, 2], atNs: 1, outputs: [] },
    },
    {
      name: 'a heartbeat with a huge model list',
      header: { type: 'heartbeat', workerId: 'w', epoch: 1, numQueuedActions: 0, usedMemoryBytes: 0, loadedModels: Array(5000).fill('m') },
    },
    { name: 'nesting 20 levels deep', header: { type: 'status_query', queryId: 'q', extra: JSON.parse('['.repeat(20) + ']'.repeat(20)) as unknown } },
    { name: 'a BigInt message type', header: { type: 5n } },
    {
      name: 'a status reply whose worker estimate is a string',
      header: {
        type: 'status_reply',
        queryId: 'q',
        status: { ...sampleStatus(), workers: [{ ...sampleStatus().workers[0]!, estimatesMs: { m: { 1: 'fast' } } }] },
      },
    },
    { name: 'a status reply without its counters', header: { type: 'status_reply', queryId: 'q', status: { ...sampleStatus(), counters: undefined } } },
  ];

  it.each(refused)('refuses $name with MALFORMED_MESSAGE or UNKNOWN_MESSAGE_TYPE, never another exception', ({ header }) => {
    let caught: unknown;
    try {
      decodeMessage([hostile.pack(header)]);
    } catch (err) {
      caught = err;
    }
    expect(isProtocolError(caught), String(caught)).toBe(true);
    expect([ErrorCode.MALFORMED_MESSAGE, ErrorCode.UNKNOWN_MESSAGE_TYPE]).toContain((caught as { code: number }).code);
  });

  it('accepts what a real worker sends: feedback with NaN for rows a ramp never saw, and exits', () => {
    const feedback = {
      siteIds: [2, 5],
      confidences: [
        [0.99, 0.4],
        [Number.NaN, 0.97],
      ],
      predictions: [
        [3, 1],
        [-1, 1],
      ],
      finalPredictions: [-1, 1],
    };
    const msg = result({
      outputRows: [1],
      outputs: [{ name: 'y', dtype: 'float32', shape: [1, 6] }],
      feedback,
      stages: [{ name: 'segment_0', durationNs: 5 }],
    }) as unknown as AnyMessage;
    const decoded = roundTrip(msg, [bytesOf(floats)]);
    expect((decoded.header as { feedback: unknown }).feedback).toEqual(feedback);
    const exit: AnyMessage = {
      type: 'exit',
      actionId: 1,
      modelName: 'm',
      siteId: 2,
      rows: [0],
      confidences: [0.99],
      predictions: [3],
      atNs: 5,
      outputs: [{ name: 'p', dtype: 'float32', shape: [1, 6] }],
    };
    expect(roundTrip(exit, [bytesOf(floats)]).header).toEqual(exit);
  });
});
