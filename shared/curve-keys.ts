/**
 * ZeroMQ CURVE keys: files written by `escapement keys`, read by the controller, workers and
 * clients. Keys are Z85 text (40 characters), as zeromq's own tools print them.
 *
 * Layout of a keys folder:
 * - `controller.key.json` {publicKey, secretKey}: the controller's pair (keep secret);
 * - `authorized-workers.json`: the workers allowed to connect, as `{"worker-0": "<public key>", ...}`:
 *   each key is bound to its worker id (a plain array of keys, unbound, is still read);
 * - `authorized-clients.json`: public keys of the clients allowed to connect;
 * - `worker-N.key.json`, `client.key.json` {publicKey, secretKey, serverPublicKey}: what a worker
 *   or client needs to connect to that controller (keep secret).
 */
import { readFileSync } from 'node:fs';

export interface KeyPair {
  publicKey: string;
  secretKey: string;
}

export interface PeerKeys extends KeyPair {
  /** The controller's public key. */
  serverPublicKey: string;
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

export function isZ85Key(value: unknown): value is string {
  return typeof value === 'string' && value.length === 40 && [...value].every((c) => Z85.includes(c));
}

/** Z85 text -> the raw 32-byte key (as ZAP requests carry it). */
export function z85Decode(text: string): Buffer {
  if (text.length % 5 !== 0) throw new Error('a Z85 string has a multiple of 5 characters');
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = Z85.indexOf(text[i + j]!);
      if (digit < 0) throw new Error(`'${text[i + j]}' is not a Z85 character`);
      value = value * 85 + digit;
    }
    out.writeUInt32BE(value >>> 0, (i / 5) * 4);
  }
  return out;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read key file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export function readKeyPair(path: string): KeyPair {
  const value = readJson(path) as Partial<KeyPair>;
  if (!isZ85Key(value.publicKey) || !isZ85Key(value.secretKey)) throw new Error(`${path} must hold Z85 "publicKey" and "secretKey" (40 characters each)`);
  return { publicKey: value.publicKey, secretKey: value.secretKey };
}

export function readPeerKeys(path: string): PeerKeys {
  const pair = readKeyPair(path);
  const value = readJson(path) as Partial<PeerKeys>;
  if (!isZ85Key(value.serverPublicKey)) throw new Error(`${path} must hold the controller's Z85 "serverPublicKey"`);
  return { ...pair, serverPublicKey: value.serverPublicKey };
}

/** Public key -> the peer id it is bound to (undefined: any id). */
export type AuthorizedKeys = ReadonlyMap<string, string | undefined>;

/** An array of keys (any id), or an object of id -> key (each key bound to its id). */
export function readAuthorizedKeys(path: string): AuthorizedKeys {
  const value = readJson(path);
  if (Array.isArray(value) && value.every(isZ85Key)) return new Map(value.map((key) => [key, undefined]));
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.every(([id, key]) => id.length > 0 && isZ85Key(key))) {
      const keys = new Map<string, string | undefined>();
      for (const [id, key] of entries) {
        if (keys.has(key as string)) throw new Error(`${path} binds one key to two ids ('${keys.get(key as string)}' and '${id}')`);
        keys.set(key as string, id);
      }
      return keys;
    }
  }
  throw new Error(`${path} must be a JSON object of id -> Z85 public key, or an array of Z85 public keys`);
}
