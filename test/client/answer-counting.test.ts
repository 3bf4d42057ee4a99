/** The client counts answers that break "exactly once" instead of dropping them silently. */
import * as zmq from 'zeromq';
import { describe, expect, it } from 'vitest';
import { EscapementClient } from '../../client/escapement-client.js';
import { decodeMessage, encodeMessage } from '../../shared/codec.js';
import type { ResponseMsg } from '../../shared/protocol.js';

describe('answers that match no request in flight', () => {
  it('are counted as duplicate (already answered) or unknown (never sent)', async () => {
    const router = new zmq.Router({ linger: 0 });
    await router.bind('tcp://127.0.0.1:*');
    const client = await EscapementClient.connect(router.lastEndpoint!, { syncClock: false });
    try {
      const answered = client.submit('m', [], { sloMs: 1000 });
      const [routingId, ...frames] = await router.receive();
      const { header } = decodeMessage(frames as Buffer[]);
      const response = (requestId: string): ResponseMsg => ({ type: 'response', requestId, status: 'OK', code: 0, arrivalNs: 1, deadlineNs: 2, completeNs: 2 });
      const requestId = (header as { requestId: string }).requestId;
      await router.send([routingId!, ...encodeMessage(response(requestId))]);
      expect((await answered).status).toBe('OK');
      await router.send([routingId!, ...encodeMessage(response(requestId))]);
      await router.send([routingId!, ...encodeMessage(response('never-sent'))]);
      for (let i = 0; i < 50 && client.answerCounts.duplicate + client.answerCounts.unknown < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(client.answerCounts).toEqual({ duplicate: 1, unknown: 1 });
    } finally {
      await client.close();
      router.close();
    }
  });
});
