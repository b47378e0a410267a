import { Injectable } from '@nestjs/common';
import {
  DeviceChannel,
  PresenceMessage,
  PresenceStatus,
  RejectionReason,
  decodeJson,
  rejectionForParseError,
  validateAs,
} from '@cowroot/protocol';
import { ServerConfig } from '../config/server-config';
import { DevicePresenceService } from '../devices/device-presence.service';
import { DeviceMessageHandler, Rejection, SessionRef } from './device-message-handler';
import { DeviceSessions } from './device-sessions';

/**
 * `…/presence` (docs/protocol.md §5.3): `online` after connect, `offline` as the last will. A will of an
 * old connection that arrives after the device already reconnected is ignored.
 */
@Injectable()
export class PresenceHandler implements DeviceMessageHandler {
  readonly channel = DeviceChannel.Presence;

  constructor(
    private readonly config: ServerConfig,
    private readonly presence: DevicePresenceService,
    private readonly sessions: DeviceSessions,
  ) {}

  async handle(deviceId: string, payload: Buffer, session: SessionRef): Promise<Rejection | null> {
    if (payload.length > this.config.maxMqttMessageBytes) {
      return { reason: RejectionReason.MessageTooLarge, detail: `${payload.length} bytes` };
    }
    const decoded = decodeJson(payload);
    if (!decoded.ok) return { reason: rejectionForParseError(decoded.code), detail: decoded.message };
    const parsed = validateAs(PresenceMessage, decoded.value);
    if (!parsed.ok) return { reason: rejectionForParseError(parsed.code), detail: parsed.message };
    if (!this.sessions.isCurrentOrNone(deviceId, session) || this.sessions.closing) return null;
    if (parsed.value.status === PresenceStatus.Online) {
      await this.presence.markOnline(deviceId, 'presence message');
    } else {
      await this.presence.markOffline(deviceId, 'last will: connection lost');
    }
    return null;
  }

  drain(): Promise<void> {
    return this.presence.drain();
  }
}
