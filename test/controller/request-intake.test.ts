import { describe, expect, it } from 'vitest';
import type { ModelSpec } from '../../controller/cluster-state.js';
import { resolveDeadline, takeIn, type ClientStanding } from '../../controller/request-intake.js';
import { ErrorCode } from '../../shared/error-codes.js';
import type { SubmitMsg } from '../../shared/protocol.js';
import { bytesOf, type Tensor } from '../../shared/tensor.js';
import { MS, modelSpec } from '../support/fake-cluster.js';

const NOW_NS = 1_000 * MS;
const image = modelSpec('image');
const text = modelSpec('text', { inputs: [{ name: 'ids', dtype: 'int64', shape: [-1, -1] }], sequenceBuckets: [16, 64, 128] });
const outOfService = new Set(['gone']);
const planner = {
  modelSpec: (name: string): ModelSpec | undefined => ({ image, text, gone: modelSpec('gone') })[name],
  isOutOfService: (name: string) => outOfService.has(name),
};
const ok: ClientStanding = { duplicate: false, numPending: 0, maxPending: 10 };
const submit = (fields: Partial<SubmitMsg>): SubmitMsg => ({ type: 'submit', requestId: 'r1', model: 'image', sloMs: 50, inputs: [], ...fields });
const x: Tensor[] = [{ name: 'x', dtype: 'float32', shape: [1, 4], data: bytesOf(new Float32Array(4)) }];
const ids = (n: number): Tensor[] => [{ name: 'ids', dtype: 'int64', shape: [1, n], data: bytesOf(new BigInt64Array(n)) }];

describe('request intake (request-intake.ts)', () => {
  it('takes a well-formed request with its absolute deadline', () => {
    expect(takeIn(submit({}), x, NOW_NS, ok, planner)).toMatchObject({ deadlineNs: NOW_NS + 50 * MS, spec: image });
  });

  it('batches a text request at the smallest bucket that holds its tokens', () => {
    expect(takeIn(submit({ model: 'text' }), ids(20), NOW_NS, ok, planner)).toMatchObject({ seqBucket: 64 });
    expect(takeIn(submit({ model: 'text' }), ids(129), NOW_NS, ok, planner)).toMatchObject({
      refusal: { code: ErrorCode.INVALID_INPUT, message: /129 tokens/ },
    });
  });

  it.each([
    ['a duplicate id', submit({}), x, { ...ok, duplicate: true }, ErrorCode.DUPLICATE_REQUEST_ID],
    ['a client over its share', submit({}), x, { ...ok, numPending: 10 }, ErrorCode.QUEUE_FULL],
    ['no SLO and no deadline', submit({ sloMs: undefined }), x, ok, ErrorCode.INVALID_DEADLINE],
    ['an unknown model', submit({ model: 'nope' }), x, ok, ErrorCode.UNKNOWN_MODEL],
    ['a model taken out of service', submit({ model: 'gone' }), x, ok, ErrorCode.MODEL_UNAVAILABLE],
    ['inputs of the wrong type', submit({}), [{ ...x[0]!, dtype: 'int64' as const }], ok, ErrorCode.INVALID_INPUT],
  ])('refuses %s with its code', (_what, msg, tensors, client, code) => {
    expect(takeIn(msg, tensors, NOW_NS, client, planner)).toMatchObject({ refusal: { code } });
  });

  it('needs exactly one of an SLO and a deadline, within an hour', () => {
    expect(resolveDeadline({ sloMs: 10, deadlineNs: NOW_NS + MS }, NOW_NS)).toMatch(/exactly one/);
    expect(resolveDeadline({ sloMs: 0 }, NOW_NS)).toMatch(/sloMs must be in/);
    expect(resolveDeadline({ sloMs: 3_600_001 }, NOW_NS)).toMatch(/sloMs must be in/);
    expect(resolveDeadline({ deadlineNs: NOW_NS }, NOW_NS)).toMatch(/already in the past/);
    expect(resolveDeadline({ deadlineNs: NOW_NS + 3_600_001 * MS }, NOW_NS)).toMatch(/more than an hour/);
    expect(resolveDeadline({ deadlineNs: NOW_NS + 5 * MS }, NOW_NS)).toBe(NOW_NS + 5 * MS);
  });
});
