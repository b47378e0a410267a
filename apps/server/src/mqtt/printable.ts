const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\ufffd\ud800-\udfff]/g;

/**
 * Text a device sent (or a parser quoted from it), made safe for a log line and for the `message` of a
 * rejection notice (docs/protocol.md §7.1): control characters, U+FFFD (invalid UTF-8) and surrogates become
 * `\uXXXX` escapes, so nothing of it is NUL, a line break or unpaired.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
