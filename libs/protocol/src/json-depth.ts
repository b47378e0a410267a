/**
 * Deepest nesting of objects and arrays a message may have (docs/protocol.md §2). The deepest real message
 * (a state report: snapshots[] → snapshot → release) nests 4 levels; the limit leaves room for additive fields.
 */
export const MAX_JSON_DEPTH = 16;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * True when the JSON text nests objects/arrays deeper than `maxDepth`. A byte scan, no recursion, run BEFORE
 * JSON.parse: everything downstream of the parser (class-transformer, class-validator, JSON.stringify)
 * recurses per level, and a 256 KiB `[[[[…` would overflow the stack there. Brackets inside strings do not
 * count; the scan does not judge validity, JSON.parse does that next.
 */
export function exceedsJsonDepth(payload: Buffer, maxDepth = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < payload.length; i++) {
    const byte = payload[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}
