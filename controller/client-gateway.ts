/**
 * The controller's side of its ZeroMQ clients: one ROUTER, decoding with every refusal answered
 * (a malformed submit gets a REJECTED response with its request id when it can be read, a
 * malformed configure a configure_reply), clock pings, and the way back for each answer. What a
 * request, a configure or a status query means is the controller's (`ClientEvents`).
 */
import * as zmq from 'zeromq';
import { decodeMessage, encodeMessage, unpackHeaderUnchecked } from '../shared/codec.js';
import { ErrorCode, isEscapementError } from '../shared/error-codes.js';
import type { ConfigureMsg, ConfigureReplyMsg, ControllerToClientMsg, ResponseMsg, SubmitMsg } from '../shared/protocol.js';
import { SerialSender } from '../shared/serial-sender.js';
import type { ControllerStatus } from '../shared/status-schema.js';
import type { Tensor } from '../shared/tensor.js';

/** Where a request came from and how its one answer goes back (ZeroMQ client, HTTP, ...). */
export interface RequestOrigin {
  /** Unique per in-flight client request id: duplicates are refused. */
  dedupeKey: string;
  /** Who sent it (a ZeroMQ peer, an HTTP address): each gets a bounded share of the pending requests. */
  clientKey: string;
  send(response: ResponseMsg, frames: Uint8Array[]): void;
}

/** What the controller does with what clients say. */
export interface ClientEvents {
  submit(origin: RequestOrigin, msg: SubmitMsg, tensors: Tensor[], nowNs: number): void;
  configure(msg: ConfigureMsg): ConfigureReplyMsg;
  status(nowNs: number): ControllerStatus;
  /** A message refused (malformed, or not a client's to send): counted in status. */
  refused(): void;
}

export class ClientGateway {
  private readonly sender: SerialSender;

  constructor(
    readonly router: zmq.Router,
    private readonly events: ClientEvents,
    private readonly nowNs: () => number,
    private readonly log: (line: string) => void,
  ) {
    this.sender = new SerialSender(router, (err) => log(`client send failed: ${err.message}`));
  }

  close(): void {
    this.sender.close();
    this.router.close();
  }

  private reply(routingId: Buffer, msg: ControllerToClientMsg, frames: Uint8Array[] = []): boolean {
    return this.sender.send([routingId, ...encodeMessage(msg, frames)]);
  }

  onFrames(routingId: Buffer, frames: Buffer[]): void {
    const nowNs = this.nowNs();
    let decoded;
    try {
      decoded = decodeMessage(frames);
    } catch (err) {
      this.events.refused();
      const code = isEscapementError(err) ? err.code : ErrorCode.MALFORMED_MESSAGE;
      const guess = guessQuery(frames[0]);
      // A malformed configure is answered as a configure (its sender waits for that reply).
      if (guess.configureQueryId !== undefined)
        this.reply(routingId, { type: 'configure_reply', queryId: guess.configureQueryId, code, message: (err as Error).message });
      else this.replyError(routingId, guess.requestId, code, (err as Error).message, nowNs);
      return;
    }
    const { header: msg, tensors } = decoded;
    switch (msg.type) {
      case 'submit':
        return this.events.submit(this.originOf(routingId, msg.requestId), msg, tensors, nowNs);
      case 'clock_ping':
        this.reply(routingId, { type: 'clock_pong', seq: msg.seq, t0Ns: msg.t0Ns, t1Ns: nowNs, t2Ns: this.nowNs() });
        return;
      case 'configure':
        this.reply(routingId, this.events.configure(msg));
        return;
      case 'status_query':
        this.reply(routingId, { type: 'status_reply', queryId: msg.queryId, status: this.events.status(nowNs) });
        return;
      default:
        this.events.refused();
        this.replyError(routingId, '', ErrorCode.UNKNOWN_MESSAGE_TYPE, `clients may not send '${msg.type}'`, nowNs);
    }
  }

  private originOf(routingId: Buffer, requestId: string): RequestOrigin {
    return {
      dedupeKey: `zmq/${routingId.toString('hex')}/${requestId}`,
      clientKey: `zmq/${routingId.toString('hex')}`,
      send: (response, frames) => {
        if (!this.reply(routingId, response, frames)) this.log(`could not queue the answer to request ${response.requestId}: client send queue full`);
      },
    };
  }

  private replyError(routingId: Buffer, requestId: string, code: number, message: string, nowNs: number): void {
    this.reply(routingId, { type: 'response', requestId, status: 'REJECTED', code, message, arrivalNs: nowNs, deadlineNs: 0, completeNs: nowNs });
  }
}

/**
 * Best effort, so the client can match the error: the requestId of an undecodable submit, or the
 * queryId of an undecodable configure.
 */
function guessQuery(header: Buffer | undefined): { requestId: string; configureQueryId?: string } {
  const value = (header ? unpackHeaderUnchecked(header) : undefined) as { type?: unknown; requestId?: unknown; queryId?: unknown } | undefined;
  const requestId = typeof value?.requestId === 'string' ? value.requestId.slice(0, 256) : '';
  return value?.type === 'configure' && typeof value.queryId === 'string' ? { requestId, configureQueryId: value.queryId.slice(0, 256) } : { requestId };
}
