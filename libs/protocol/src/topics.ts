import { isDeviceId } from './identifiers';

/**
 * MQTT topic layout (docs/protocol.md §4). Every device owns the subtree
 * `cowroot/v1/devices/<deviceId>/`; the server's ACL grants it nothing outside.
 */
export const TOPIC_ROOT = 'cowroot/v1/devices';

export enum DeviceChannel {
  /** device → server: full state report (QoS 1) */
  State = 'state',
  /** device → server: job events for commands (QoS 1) */
  Events = 'events',
  /** device → server: online / offline; the offline message is the last will (QoS 1, retained) */
  Presence = 'presence',
  /** server → device: commands (QoS 1) */
  Commands = 'commands',
  /** server → device: notices of messages acknowledged but not applied (QoS 1, §7.1) */
  Rejections = 'rejections',
  /**
   * server → device, cluster mode (BROKER=nats) only: the event ids the server has stored (QoS 0, §5.4).
   * NATS acknowledges a device's QoS 1 publish before its stream stored it, so there the PUBACK is not
   * the server's word; this is.
   */
  Receipts = 'receipts',
}

/** Channels a device may publish on. */
export const DEVICE_PUBLISH_CHANNELS: readonly DeviceChannel[] = [
  DeviceChannel.State,
  DeviceChannel.Events,
  DeviceChannel.Presence,
];

/** Channels a device may subscribe to (its own only). */
export const DEVICE_SUBSCRIBE_CHANNELS: readonly DeviceChannel[] = [
  DeviceChannel.Commands,
  DeviceChannel.Rejections,
  DeviceChannel.Receipts,
];

export function deviceTopic(deviceId: string, channel: DeviceChannel): string {
  if (!isDeviceId(deviceId)) throw new Error(`invalid device id for a topic: ${JSON.stringify(deviceId)}`);
  return `${TOPIC_ROOT}/${deviceId}/${channel}`;
}

export interface ParsedDeviceTopic {
  deviceId: string;
  channel: DeviceChannel;
}

const CHANNELS: ReadonlySet<string> = new Set(Object.values(DeviceChannel));

/** Parses `cowroot/v1/devices/<id>/<channel>`; null for anything else (wildcards included). */
export function parseDeviceTopic(topic: string): ParsedDeviceTopic | null {
  const prefix = `${TOPIC_ROOT}/`;
  if (!topic.startsWith(prefix)) return null;
  const rest = topic.slice(prefix.length).split('/');
  if (rest.length !== 2) return null;
  const [deviceId, channel] = rest;
  if (!isDeviceId(deviceId)) return null;
  if (!CHANNELS.has(channel)) return null;
  return { deviceId, channel: channel as DeviceChannel };
}
