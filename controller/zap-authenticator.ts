/**
 * A ZeroMQ Authentication Protocol (ZAP, RFC 27) handler: libzmq asks it, over
 * inproc://zeromq.zap.01, whether a CURVE peer may connect; it answers by looking the peer's
 * public key up in the allowed set of the socket's ZAP domain (`workers`, `clients`). Unknown keys
 * are refused, so a worker without an authorized key can never register. Which id a key may
 * register as is checked on the hello (shared/key-proof.ts): ZAP does not see the peer's id.
 */
import * as zmq from 'zeromq';
import { z85Decode, type AuthorizedKeys } from '../shared/curve-keys.js';

export class ZapAuthenticator {
  private readonly socket = new zmq.Reply();
  /** Per domain: the raw keys (hex) allowed. */
  private readonly allowed = new Map<string, Set<string>>();
  numRefused = 0;

  constructor(
    domains: Record<string, AuthorizedKeys>,
    private readonly log: (line: string) => void,
  ) {
    for (const [domain, keys] of Object.entries(domains)) this.allowed.set(domain, new Set([...keys.keys()].map((k) => z85Decode(k).toString('hex'))));
  }

  async start(): Promise<void> {
    await this.socket.bind('inproc://zeromq.zap.01');
    void this.serve();
  }

  private async serve(): Promise<void> {
    try {
      for await (const [version, requestId, domain, address, , mechanism, key] of this.socket) {
        const allowedKeys = this.allowed.get(domain?.toString() ?? '');
        const ok = mechanism?.toString() === 'CURVE' && key !== undefined && (allowedKeys?.has(key.toString('hex')) ?? false);
        if (!ok) {
          this.numRefused++;
          this.log(
            `refused a ${mechanism?.toString() ?? '?'} connection from ${address?.toString() ?? '?'} in domain '${domain?.toString() ?? ''}': unknown key`,
          );
        }
        await this.socket.send([version!, requestId!, ok ? '200' : '400', ok ? 'OK' : 'unknown key', ok ? domain!.toString() : '', '']);
      }
    } catch {
      // closed
    }
  }

  close(): void {
    this.socket.close();
  }
}
