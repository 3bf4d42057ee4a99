/** `escapement keys`: CURVE key pairs for a controller, its workers and a client (see shared/curve-keys.ts). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';

export function runKeys(args: { out: string; workers: number; clients: number }): void {
  mkdirSync(args.out, { recursive: true, mode: 0o700 });
  const secret = (file: string, value: unknown) => writeFileSync(join(args.out, file), `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  const controller = zmq.curveKeyPair();
  secret('controller.key.json', controller);
  // Each worker key is bound to the id the worker must register with (--id worker-N).
  const workers = Object.fromEntries(
    Array.from({ length: args.workers }, (_, i) => {
      const pair = zmq.curveKeyPair();
      secret(`worker-${i}.key.json`, { ...pair, serverPublicKey: controller.publicKey });
      return [`worker-${i}`, pair.publicKey];
    }),
  );
  const clients = Array.from({ length: args.clients }, (_, i) => {
    const pair = zmq.curveKeyPair();
    secret(args.clients === 1 ? 'client.key.json' : `client-${i}.key.json`, { ...pair, serverPublicKey: controller.publicKey });
    return pair.publicKey;
  });
  writeFileSync(join(args.out, 'authorized-workers.json'), `${JSON.stringify(workers, null, 2)}\n`);
  writeFileSync(join(args.out, 'authorized-clients.json'), `${JSON.stringify(clients, null, 2)}\n`);
  process.stdout.write(`wrote keys for a controller, ${args.workers} worker(s) and ${args.clients} client(s) to ${args.out}\n`);
}
