import type { DeviceChannel } from '@cowroot/protocol';

/** One MQTT connection (an aedes client): presence tells a stale last will from the live session by it. */
export interface SessionRef {
  close(callback?: () => void): void;
}

/**
 * Ingest for one device channel. handle() resolves once the message is applied, dropped as stale, or
 * rejected (logged and counted); it rejects only when storage failed, and then the broker closes the
 * connection without PUBACK so the device sends the message again.
 */
export interface DeviceMessageHandler {
  readonly channel: DeviceChannel;
  handle(deviceId: string, payload: Buffer, session: SessionRef): Promise<void>;
  /** resolves when every message handed over so far is written */
  drain(): Promise<void>;
}
