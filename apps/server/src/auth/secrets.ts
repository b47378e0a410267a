import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 32 random bytes, base64url, with a prefix that makes leaked tokens easy to grep for. */
export function generateSecret(prefix = 'cwr_'): string {
  return prefix + randomBytes(32).toString('base64url');
}

/**
 * sha256 of the secret. Secrets here are 256-bit random tokens, not passwords, so a slow KDF adds no
 * protection and would cost a CPU-second per thousand MQTT connects at fleet scale.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function verifySecret(secret: string, hash: string): boolean {
  const actual = Buffer.from(hashSecret(secret), 'hex');
  const expected = Buffer.from(hash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
