/**
 * The port between device storage (apps/server/src/devices) and whatever carries MQTT to the devices: the
 * embedded aedes broker (apps/server/src/mqtt) or a NATS JetStream cluster (apps/server/src/mqtt/nats).
 * Devices code depends on this file only, never on an adapter, so devices ⇄ mqtt has no import cycle
 * (eslint.config.mjs keeps it that way). Inbound reports go the other way: an adapter hands them to the
 * devices-owned ingest handlers.
 */
export const DEVICE_BROKER = Symbol('DEVICE_BROKER');

/** `embedded`: aedes in this process (default, one replica). `nats`: devices speak MQTT to a NATS cluster. */
export const BROKER_KINDS = ['embedded', 'nats'] as const;
export type BrokerKind = (typeof BROKER_KINDS)[number];

export interface DeviceBroker {
  readonly kind: BrokerKind;
  /** the broker takes publishes (for /readyz and the queued-command poll) */
  isListening(): boolean;
  /**
   * Publishes one command (QoS 1) to the device's commands topic. True when the broker has taken
   * responsibility for delivering it: embedded, the device has a live session here; NATS, JetStream stored
   * it in the device's MQTT session (also while the device is offline). False = still `queued`.
   */
  publishCommand(deviceId: string, payload: Buffer): Promise<boolean>;
  /**
   * True when commands of offline devices are kept by the broker (NATS): the queued-command poll then covers
   * every device, not only those with a session on this instance.
   */
  readonly queuesForOfflineDevices: boolean;
  /** Whether `deviceId` has a live session on this instance (embedded) or anywhere (NATS, as last seen). */
  isConnected(deviceId: string): boolean;
  /**
   * Ends the device's access at once (decommissioning): embedded closes its session; NATS revokes its JWTs,
   * which closes its connection on whatever node. True when something was closed or revoked.
   */
  disconnectDevice(deviceId: string): Promise<boolean>;
  /**
   * Called with a device id whenever its unacknowledged commands should be published again: it
   * (re)subscribed to its commands topic, or it reconnected after a takeover or a broker failover.
   * `recentToo`: reports may have been lost inside the broker (NATS stream failover): commands finished in the
   * last minutes are sent again too, and the device answers a command id it knows with what it reported.
   */
  onResendNeeded(listener: (deviceId: string, recentToo?: boolean) => void): void;
}
