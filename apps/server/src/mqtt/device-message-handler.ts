import type { DeviceChannel, RejectionReason } from '@cowroot/protocol';

/** One MQTT connection (an aedes client): presence tells a stale last will from the live session by it. */
export interface SessionRef {
  close(callback?: () => void): void;
}

/** What identifies a rejected message to its device, as far as it could be read (docs/protocol.md §7.1). */
export interface MessageRefs {
  seq?: number;
  eventId?: string;
  commandId?: string;
}

/** A message acknowledged but not applied: counted, logged and told to the device by the broker. */
export interface Rejection {
  reason: RejectionReason;
  detail: string;
  refs?: MessageRefs;
}

/**
 * Ingest for one device channel. handle() resolves once the message is applied or dropped as a duplicate
 * (null), or refused (a Rejection); it rejects only when storage failed for a reason that is not the
 * message's (connection lost), and then the broker closes the connection without PUBACK so the device
 * sends the message again.
 */
export interface DeviceMessageHandler {
  readonly channel: DeviceChannel;
  handle(deviceId: string, payload: Buffer, session: SessionRef): Promise<Rejection | null>;
  /** resolves when every message handed over so far is written */
  drain(): Promise<void>;
}
