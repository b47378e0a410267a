import { isDeviceId } from '@cowroot/protocol';

/**
 * Tags are free labels (`canary`, `site=berlin`); `;` and `,` are kept out because CSV bulk files use them
 * as separators.
 */
export const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:=-]{0,63}$/;
export const MAX_TAGS = 32;

/**
 * A factory-generated credential given in a bulk file: 24-256 printable ASCII characters without spaces, of
 * at least MIN_CREDENTIAL_ENTROPY_BITS by credentialEntropyBits. Stored under a keyed hash
 * (factory-credential-hasher.ts).
 */
export const GIVEN_CREDENTIAL_PATTERN = /^[\x21-\x7e]{24,256}$/;

/**
 * The floor of credentialEntropyBits. Online guesses are throttled (auth/login-throttle.ts) and the stored
 * hash is keyed, so the floor only has to refuse the plainly weak; no random credential of 24 characters
 * falls below it (100,000 random 24-digit decimal strings scored at least 53.7 bits).
 */
export const MIN_CREDENTIAL_ENTROPY_BITS = 48;

/**
 * The rule refused factory credentials are held to (documented in README § Security): a credential that is
 * a string repeated (`abcabcabc…`) counts as that string once, and the estimate is its length times the
 * Shannon entropy of its own character frequencies. Random base64 of 24 characters scores ~100 bits, 32
 * hex digits ~118; `aaaa…` scores 0 and `password1234password1234` 41. It does not know dictionary words:
 * use random factory credentials.
 */
export function credentialEntropyBits(credential: string): number {
  let unit = credential;
  for (let period = 1; period <= credential.length / 2; period++) {
    if (
      credential.length % period === 0 &&
      credential.slice(0, period).repeat(credential.length / period) === credential
    ) {
      unit = credential.slice(0, period);
      break;
    }
  }
  const counts = new Map<string, number>();
  for (const c of unit) counts.set(c, (counts.get(c) ?? 0) + 1);
  let perChar = 0;
  for (const n of counts.values()) perChar -= (n / unit.length) * Math.log2(n / unit.length);
  return unit.length * perChar;
}

/** Why a given factory credential is refused, or null. */
export function givenCredentialProblem(credential: string): string | null {
  if (!GIVEN_CREDENTIAL_PATTERN.test(credential)) {
    return 'credential must be 24-256 printable ASCII characters without spaces';
  }
  const bits = credentialEntropyBits(credential);
  return bits < MIN_CREDENTIAL_ENTROPY_BITS
    ? `credential is too guessable (about ${Math.floor(bits)} bits, at least ${MIN_CREDENTIAL_ENTROPY_BITS} needed): use a random one`
    : null;
}

/** Why `tags` is unacceptable, or null. */
export function tagProblem(tags: readonly string[]): string | null {
  if (tags.length > MAX_TAGS) return `at most ${MAX_TAGS} tags`;
  const bad = tags.find((tag) => !TAG_PATTERN.test(tag));
  if (bad !== undefined) return `invalid tag ${JSON.stringify(bad)} (letters, digits and . _ : = -, up to 64)`;
  return null;
}

export function deviceIdProblem(id: string): string | null {
  return isDeviceId(id) ? null : `invalid device id ${JSON.stringify(id)} (letters, digits and . _ -, up to 64)`;
}

/** Removes duplicates, keeps the first order: tags are a set. */
export function normaliseTags(tags: readonly string[]): string[] {
  return [...new Set(tags)];
}
