/** What the protocol lets a report carry (HealthCheckResult.outputTail, MaxLength 4096). */
export const OUTPUT_TAIL_CHARS = 4096;
/** HealthCheckResult.name, MaxLength 128. */
export const CHECK_NAME_CHARS = 128;

// C0 controls but tab and newline, DEL, C1 controls; NUL among them (PostgreSQL refuses it in text)
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;
// the replacement character of invalid UTF-8, and lone surrogates that JSON encoders choke on
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function clean(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(CONTROL, '').replace(UNPAIRED_SURROGATE, '\uFFFD');
}

/**
 * A check's output as it may be reported (docs/agent.md §5): control characters (NUL included) removed,
 * tab and newline kept, the last OUTPUT_TAIL_CHARS characters. Whatever a check prints, the report is
 * valid for the protocol and storable by the server.
 */
export function sanitizeCheckOutput(text: string): string {
  const cleaned = clean(text);
  return cleaned.length > OUTPUT_TAIL_CHARS ? cleaned.slice(-OUTPUT_TAIL_CHARS) : cleaned;
}

/** A check's name (its file name) as it may be reported: no control characters, at most CHECK_NAME_CHARS. */
export function sanitizeCheckName(name: string): string {
  return clean(name).replace(/\n|\t/g, ' ').slice(0, CHECK_NAME_CHARS);
}
