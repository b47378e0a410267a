import { isDeviceId } from '@cowroot/protocol';

/**
 * Tags are free labels (`canary`, `site=berlin`); `;` and `,` are kept out because CSV bulk files use them
 * as separators.
 */
export const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:=-]{0,63}$/;
export const MAX_TAGS = 32;

/**
 * A factory-generated credential given in a bulk file. It is stored as a fast sha256 hash (auth/secrets.ts),
 * which is only safe for high-entropy secrets, hence the minimum length.
 */
export const GIVEN_CREDENTIAL_PATTERN = /^[\x21-\x7e]{24,256}$/;

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
