/**
 * Binding a worker's CURVE key to its id. ZAP (controller/zap-authenticator.ts) admits any
 * authorized key, and it cannot see which id the peer will claim. So a worker proves in its hello
 * that it holds the secret key bound to the id it claims: CURVE keys are X25519 keys, both sides
 * derive the same secret from their own secret key and the other's public key, and the hello
 * carries HMAC-SHA256(that secret, "escapement-hello" + id). Only the holder of the bound key (or
 * of the controller's) can compute it; the hello travels encrypted, so it cannot be replayed.
 */
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, timingSafeEqual } from 'node:crypto';
import { z85Decode, type KeyPair } from './curve-keys.js';

const b64 = (key: string) => z85Decode(key).toString('base64url');

function sharedSecret(own: KeyPair, peerPublicKey: string): Buffer {
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(own.secretKey), x: b64(own.publicKey) }, format: 'jwk' });
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(peerPublicKey) }, format: 'jwk' });
  return diffieHellman({ privateKey, publicKey });
}

/** The proof a peer holding `own` puts in its hello to a controller (or the controller expects). */
export function helloProof(own: KeyPair, peerPublicKey: string, workerId: string): string {
  return createHmac('sha256', sharedSecret(own, peerPublicKey)).update(`escapement-hello\0${workerId}`).digest('hex');
}

/** Whether `proof` shows the sender holds the secret key of `workerPublicKey`. */
export function verifyHelloProof(controller: KeyPair, workerPublicKey: string, workerId: string, proof: string | undefined): boolean {
  if (typeof proof !== 'string' || !/^[0-9a-f]{64}$/.test(proof)) return false;
  return timingSafeEqual(Buffer.from(helloProof(controller, workerPublicKey, workerId), 'hex'), Buffer.from(proof, 'hex'));
}
