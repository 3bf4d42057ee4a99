import * as zmq from 'zeromq';
import { describe, expect, it } from 'vitest';
import { helloProof, verifyHelloProof } from '../../shared/key-proof.js';

describe('the hello key proof', () => {
  const controller = zmq.curveKeyPair();
  const worker0 = zmq.curveKeyPair();
  const worker1 = zmq.curveKeyPair();

  it('verifies for the holder of the key bound to the id it claims, and for nobody else', () => {
    const proof = helloProof(worker0, controller.publicKey, 'worker-0');
    expect(verifyHelloProof(controller, worker0.publicKey, 'worker-0', proof)).toBe(true);
    // another authorized worker's key claiming worker-0
    expect(verifyHelloProof(controller, worker0.publicKey, 'worker-0', helloProof(worker1, controller.publicKey, 'worker-0'))).toBe(false);
    // worker-0's proof replayed for another id
    expect(verifyHelloProof(controller, worker1.publicKey, 'worker-1', proof)).toBe(false);
    expect(verifyHelloProof(controller, worker0.publicKey, 'worker-0x', proof)).toBe(false);
  });

  it('refuses a missing or malformed proof', () => {
    for (const bad of [undefined, '', 'zz', '0'.repeat(63), 'g'.repeat(64)])
      expect(verifyHelloProof(controller, worker0.publicKey, 'worker-0', bad)).toBe(false);
  });
});
