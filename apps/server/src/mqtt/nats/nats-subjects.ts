import { DeviceChannel, isDeviceId } from '@cowroot/protocol';

/** The JetStream stream device reports land in, and the one durable consumer all replicas share. */
export const REPORTS_STREAM = 'COWROOT_REPORTS';
export const INGEST_CONSUMER = 'ingest';

/** MQTT topic a/b/c is NATS subject a.b.c (docs.nats.io "MQTT"); the channels replicas ingest. */
export const REPORT_SUBJECTS = [
  `cowroot.v1.devices.*.${DeviceChannel.State}`,
  `cowroot.v1.devices.*.${DeviceChannel.Events}`,
];

export function deviceSubject(deviceId: string, channel: DeviceChannel): string {
  return `cowroot.v1.devices.${deviceId}.${channel}`;
}

/**
 * The MQTT listener's own QoS 1 store (nats-server 2.9 server/mqtt.go mqttStreamSubjectPrefix): a
 * JetStream publish here with header `Nmqtt-Pub: 1` is kept in the device's session while it is offline.
 * An internal of nats-server, pinned by tools/nats/nats-jetstream-cluster.int-spec.ts.
 */
export function queuedCommandSubject(deviceId: string): string {
  return `$MQTT.msgs.${deviceSubject(deviceId, DeviceChannel.Commands)}`;
}

/** `cowroot.v1.devices.<id>.<channel>` → its parts, or null for anything else. */
export function parseReportSubject(subject: string): { deviceId: string; channel: string } | null {
  const parts = subject.split('.');
  if (parts.length !== 5 || parts[0] !== 'cowroot' || parts[1] !== 'v1' || parts[2] !== 'devices') return null;
  return isDeviceId(parts[3]) ? { deviceId: parts[3], channel: parts[4] } : null;
}
