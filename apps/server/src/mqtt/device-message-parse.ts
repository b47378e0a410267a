import { decodeJson, RejectionReason, rejectionForParseError, validateAs } from '@cowroot/protocol';
import type { MessageRefs, Rejection } from './device-message-handler';
import { messageRefs } from './message-refs';

export type ParsedDeviceMessage<T> = { ok: true; value: T; refs: MessageRefs } | { ok: false; rejection: Rejection };

/**
 * What every device channel checks first (docs/protocol.md §7.1), in this order: the size bound, JSON,
 * then the channel's message class. A message that decoded but failed validation is refused with the
 * identifying fields it carried (refs), so the device can tell which message it was.
 */
export function parseDeviceMessage<T extends object>(
  payload: Buffer,
  messageClass: new () => T,
  maxBytes: number,
): ParsedDeviceMessage<T> {
  if (payload.length > maxBytes) {
    return { ok: false, rejection: { reason: RejectionReason.MessageTooLarge, detail: `${payload.length} bytes` } };
  }
  const decoded = decodeJson(payload);
  if (!decoded.ok)
    return { ok: false, rejection: { reason: rejectionForParseError(decoded.code), detail: decoded.message } };
  const refs = messageRefs(decoded.value);
  const parsed = validateAs(messageClass, decoded.value);
  if (!parsed.ok)
    return { ok: false, rejection: { reason: rejectionForParseError(parsed.code), detail: parsed.message, refs } };
  return { ok: true, value: parsed.value, refs };
}
