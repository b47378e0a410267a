import { fromSeed, type KeyPair } from '@nats-io/jwt';
import { KeyObject, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** DER prefix of a PKCS#8 Ed25519 private key (RFC 8410 §7), followed by the 32-byte seed. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** nkeys' prefix byte of a user public key ('U' in base32: 20 << 3). */
const USER_PREFIX = 20 << 3;

function base32Encode(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** CRC-16/XMODEM, the checksum nkeys appends (little-endian) to every encoded key. */
function crc16(bytes: Buffer): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/**
 * A fresh NATS user public key (`U…`) from a native Ed25519 key pair whose private half is dropped: all a
 * bearer JWT's subject needs. nkeys.js's createUser().getPublicKey() is a pure-JS scalar multiplication.
 */
export function nativeUserPublicKey(): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const body = Buffer.concat([Buffer.from([USER_PREFIX]), raw]);
  const checksum = Buffer.alloc(2);
  checksum.writeUInt16LE(crc16(body));
  return base32Encode(Buffer.concat([body, checksum]));
}

function base32Decode(text: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text) {
    const index = BASE32.indexOf(char);
    if (index < 0) throw new Error('not an nkey seed');
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/**
 * An nkey whose signatures come from Node's native Ed25519 instead of nkeys.js's pure-JS tweetnacl, which
 * re-derives the key pair from the seed on every call: measured here 46 ms per signature under load (three
 * per JWT), so a replica issuing broker tokens for a reconnecting fleet spent its event loop on them. Ed25519
 * is deterministic: the signatures are byte for byte those of the nkeys.js key (native-signing-key.spec.ts).
 * Everything but sign() is the nkeys.js key's own (public and private key computed once).
 */
export function nativeSigningKey(seed: string): KeyPair {
  const inner = fromSeed(new TextEncoder().encode(seed));
  // the seed's base32 holds 2 prefix bytes, the 32-byte Ed25519 seed and a CRC16
  const raw = base32Decode(seed).subarray(2, 34);
  const key: KeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, raw]), format: 'der', type: 'pkcs8' });
  // both derive the key pair again in nkeys.js, and jwt.js asks for both on every encode (checkKey)
  const publicKey = inner.getPublicKey();
  const privateKey = inner.getPrivateKey();
  return {
    getPublicKey: () => publicKey,
    getPrivateKey: () => privateKey,
    getSeed: () => inner.getSeed(),
    sign: (input: Uint8Array) => new Uint8Array(sign(null, input, key)),
    verify: (input: Uint8Array, sig: Uint8Array) => inner.verify(input, sig),
    clear: () => inner.clear(),
    seal: (input: Uint8Array, recipient: string, nonce?: Uint8Array) => inner.seal(input, recipient, nonce),
    open: (message: Uint8Array, sender: string) => inner.open(message, sender),
  };
}
