/** Opaque pagination cursors: base64url of a JSON value, so clients cannot depend on their shape. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(cursor: string, isValid: (value: unknown) => value is T): T | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    return isValid(value) ? value : null;
  } catch {
    return null;
  }
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/*
 * Field checks for cursor predicates. A cursor is decoded from client input, so every field must be a value
 * its column can take: a forged cursor is a 400 here, never a database error.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BIGINT_MAX = 9223372036854775807n;

export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);

/** Exactly what encodeCursor writes for a timestamp (Date#toISOString), so it is one PostgreSQL accepts. */
export const isIsoTimestamp = (value: unknown): value is string => {
  if (typeof value !== 'string' || value.length !== 24) return false;
  const time = Date.parse(value);
  return !Number.isNaN(time) && new Date(time).toISOString() === value;
};

/** A non-negative PostgreSQL bigint written as decimal digits. */
export const isBigintText = (value: unknown): value is string =>
  typeof value === 'string' && /^\d{1,19}$/.test(value) && BigInt(value) <= BIGINT_MAX;

/** A PostgreSQL integer (int4). */
export const isInt32 = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= -2147483648 && (value as number) <= 2147483647;
