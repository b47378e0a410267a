import { INT32_MAX } from '@cowroot/protocol';
import type { MessageRefs } from './device-message-handler';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The identifying fields of a decoded but invalid message, each only when it has a valid shape: the notice
 * names which message was refused without echoing anything else the device sent (docs/protocol.md §7.1).
 */
export function messageRefs(plain: Record<string, unknown>): MessageRefs {
  const refs: MessageRefs = {};
  const { seq, eventId, commandId } = plain;
  if (typeof seq === 'number' && Number.isInteger(seq) && seq >= 0 && seq <= INT32_MAX) refs.seq = seq;
  if (typeof eventId === 'string' && UUID.test(eventId)) refs.eventId = eventId;
  if (typeof commandId === 'string' && UUID.test(commandId)) refs.commandId = commandId;
  return refs;
}
