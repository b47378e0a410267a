import type { AuditEntryInput } from './audit.service';

/** Largest `before` / `after` of a device-caused audit entry, as JSON characters. */
export const MAX_DEVICE_AUDIT_VALUE_CHARS = 8192;
/** Largest `reason` of a device-caused audit entry. */
export const MAX_DEVICE_AUDIT_REASON_CHARS = 1024;
const PREVIEW_CHARS = 1024;

function boundValue(value: unknown): unknown {
  if (value === undefined || value === null) return value;
  const json = JSON.stringify(value);
  if (json.length <= MAX_DEVICE_AUDIT_VALUE_CHARS) return value;
  return { truncated: true, chars: json.length, preview: json.slice(0, PREVIEW_CHARS) };
}

/**
 * Nothing a device sends lands in an audit row beyond a bounded size (docs/protocol.md §7.1): a device-caused
 * entry keeps `before`/`after` up to MAX_DEVICE_AUDIT_VALUE_CHARS of JSON (else a marked preview) and a
 * `reason` up to MAX_DEVICE_AUDIT_REASON_CHARS. Operator and system entries are the server's own text.
 */
export function boundAuditEntry(entry: AuditEntryInput): AuditEntryInput {
  if (entry.actor.type !== 'device') return entry;
  return {
    ...entry,
    before: boundValue(entry.before),
    after: boundValue(entry.after),
    reason:
      entry.reason && entry.reason.length > MAX_DEVICE_AUDIT_REASON_CHARS
        ? `${entry.reason.slice(0, MAX_DEVICE_AUDIT_REASON_CHARS - 1)}…`
        : entry.reason,
  };
}
