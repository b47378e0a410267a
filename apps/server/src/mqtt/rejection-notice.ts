import { DeviceChannel, MessageRejectedMessage, PROTOCOL_VERSION } from '@cowroot/protocol';
import { Rejection } from './device-message-handler';
import { printable } from './printable';

/** The `message` of a notice is the rejection's detail made printable, at most this many characters. */
const MESSAGE_LIMIT = 1024;

/**
 * docs/protocol.md §7.1: the notice a device gets on its rejections topic for a message that was
 * acknowledged but not applied. One construction for both broker adapters (embedded aedes, NATS), so a
 * device sees the same notice whichever carries it. `suppressed` counts the notices the budget dropped
 * since the last one sent (NoticeBudget.take); 0 leaves the field out.
 */
export function rejectionNotice(
  channel: DeviceChannel,
  rejection: Rejection,
  suppressed: number,
  at: Date = new Date(),
): MessageRejectedMessage {
  return {
    v: PROTOCOL_VERSION,
    reason: rejection.reason,
    channel,
    message: printable(rejection.detail).slice(0, MESSAGE_LIMIT),
    at: at.toISOString(),
    ...rejection.refs,
    ...(suppressed > 0 ? { suppressed } : {}),
  };
}
