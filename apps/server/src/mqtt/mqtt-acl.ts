import {
  DEVICE_PUBLISH_CHANNELS,
  DEVICE_SUBSCRIBE_CHANNELS,
  ParsedDeviceTopic,
  deviceTopic,
  parseDeviceTopic,
} from '@cowroot/protocol';

export type PublishDecision = { allowed: true; topic: ParsedDeviceTopic } | { allowed: false; reason: string };

/**
 * docs/protocol.md §4: a device owns `cowroot/v1/devices/<its id>/`; it may publish state, events and
 * presence there and nothing anywhere else (the commands channel is the server's).
 */
export function decidePublish(deviceId: string, topic: string): PublishDecision {
  const parsed = parseDeviceTopic(topic);
  if (!parsed) return { allowed: false, reason: `not a device topic: ${topic}` };
  if (parsed.deviceId !== deviceId) return { allowed: false, reason: `topic of another device: ${topic}` };
  if (!DEVICE_PUBLISH_CHANNELS.includes(parsed.channel))
    return { allowed: false, reason: `channel ${parsed.channel} is server-only` };
  return { allowed: true, topic: parsed };
}

/**
 * A device may subscribe to exactly its own commands and rejections topics (§4, §7.1): no wildcards, no other
 * device, no $SYS.
 */
export function maySubscribe(deviceId: string, topicFilter: string): boolean {
  return DEVICE_SUBSCRIBE_CHANNELS.some((channel) => topicFilter === deviceTopic(deviceId, channel));
}
