import { IsInt, IsString, Max, MaxLength, Min, ValidateBy, ValidationOptions, isISO8601 } from 'class-validator';

/**
 * Validators for what the server stores (docs/protocol.md §2): a device message that passes the schema must
 * also fit the column it lands in, or one device's report fails the transaction it shares with others.
 */

/** PostgreSQL `integer` (state_seq). */
export const INT32_MAX = 2 ** 31 - 1;
/** Largest integer a JSON number keeps exactly in JavaScript; below PostgreSQL `bigint` (free_bytes). */
export const MAX_SAFE_UINT = Number.MAX_SAFE_INTEGER;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Text PostgreSQL can store in `text` and `jsonb`: no NUL (U+0000, refused by both) and no lone UTF-16
 * surrogate (`"\ud800"` in JSON is valid JSON but refused by `jsonb`).
 */
export function isStorableText(value: unknown): value is string {
  return typeof value === 'string' && !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

/** The one decorator for storable text; every free-text string of a device message carries it (or `Text`). */
export function IsStorableText(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isStorableText',
      validator: {
        validate: (value: unknown) => isStorableText(value),
        defaultMessage: () => '$property must not contain NUL or unpaired surrogates',
      },
    },
    options,
  );
}

/** A free-text string field: a string, at most `maxLength` characters, storable. */
export function Text(maxLength: number, options?: ValidationOptions): PropertyDecorator {
  return (target, key) => {
    IsString(options)(target, key);
    MaxLength(maxLength, options)(target, key);
    IsStorableText(options)(target, key);
  };
}

/** An integer in [0, max]; the max names the column (INT32_MAX for `integer`, MAX_SAFE_UINT otherwise). */
export function Uint(max: number, options?: ValidationOptions): PropertyDecorator {
  return (target, key) => {
    IsInt(options)(target, key);
    Min(0, options)(target, key);
    Max(max, options)(target, key);
  };
}

/** `YYYY-MM-DDTHH:MM[:SS[.fraction]](Z|±HH:MM)`: what `toISOString()` writes and `timestamptz` reads. */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-](0\d|1[0-4]):[0-5]\d)$/;

/** A real calendar date-time PostgreSQL `timestamptz` accepts (no 30 February, no week dates, year ≥ 1). */
export function isTimestamp(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const match = DATE_TIME.exec(value);
  if (!match || !isISO8601(value, { strict: true, strictSeparator: true })) return false;
  return Number(match[1]) >= 1 && Number.isFinite(Date.parse(value));
}

export function Timestamp(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isTimestamp',
      validator: {
        validate: (value: unknown) => isTimestamp(value),
        defaultMessage: () => '$property must be an ISO 8601 date-time (YYYY-MM-DDTHH:MM:SSZ)',
      },
    },
    options,
  );
}
