/**
 * The open loop's niceness: every thread of the load generator runs at the asked niceness while
 * it sends, and at the one before once it is done; and a schedule given as offsets is kept (a
 * fake client; no processes).
 */
import { getPriority } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { EscapementClient, InferResponse } from '../../client/escapement-client.js';
import { runOpenLoop } from '../../loadgen/open-loop.js';
import { monotonicNowNs } from '../../shared/clock.js';

/** Answers every request at once, noting this thread's niceness when each was sent. */
function fakeClient(seen: number[]): EscapementClient {
  return {
    submit: async () => {
      seen.push(getPriority());
      return { status: 'OK' } as unknown as InferResponse;
    },
  } as unknown as EscapementClient;
}

describe('runOpenLoop', () => {
  it('sends at the asked niceness and restores the previous one after', async () => {
    const before = getPriority();
    const asked = Math.min(19, before + 2); // raising the value needs no privilege
    const seen: number[] = [];
    const result = await runOpenLoop(fakeClient(seen), { model: 'm', numRequests: 20, ratePerSec: 2_000, sloMs: 100, inputsFor: () => [], niceness: asked });
    expect(result.nicenessRefused).toBeUndefined();
    expect(result.responses).toHaveLength(20);
    expect(new Set(seen)).toEqual(new Set([asked]));
    // Lowering it back needs CAP_SYS_NICE (root here and on CI); without it the loop keeps the raised value.
    expect(getPriority()).toBe(process.getuid?.() === 0 ? before : asked);
  });

  it('leaves the niceness alone when none is asked', async () => {
    const before = getPriority();
    const seen: number[] = [];
    await runOpenLoop(fakeClient(seen), { model: 'm', numRequests: 5, ratePerSec: 2_000, sloMs: 100, inputsFor: () => [] });
    expect(new Set(seen)).toEqual(new Set([before]));
    expect(getPriority()).toBe(before);
  });

  it('sends on a given schedule of offsets, whatever numRequests and ratePerSec say', async () => {
    const sentNs: number[] = [];
    const client = { submit: async () => (sentNs.push(monotonicNowNs()), { status: 'OK' } as unknown as InferResponse) } as unknown as EscapementClient;
    const offsetsNs = [0, 30e6, 30e6, 60e6];
    const result = await runOpenLoop(client, { model: 'm', numRequests: 99, ratePerSec: 1, sloMs: 100, inputsFor: () => [], arrivals: { offsetsNs } });
    expect(result.responses).toHaveLength(4);
    expect(sentNs).toHaveLength(4);
    // never before its time: each send is at least its offset after the first one's due time
    const firstDueNs = sentNs[0]! - result.scheduleLagMs[0]! * 1e6;
    for (let i = 0; i < 4; i++) expect(sentNs[i]! - firstDueNs).toBeGreaterThanOrEqual(offsetsNs[i]! - 1e5);
  });
});
