import { Injectable } from '@nestjs/common';
import { DeviceChannel, PresenceMessage, PresenceStatus } from '@cowroot/protocol';
import { ServerConfig } from '../config/server-config';
import { DevicePresenceService } from '../devices/device-presence.service';
import { parseDeviceMessage } from './device-message-parse';
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
    const parsed = parseDeviceMessage(payload, PresenceMessage, this.config.maxMqttMessageBytes);
    // a presence message carries no seq, event or command id: a refusal names none
    if (!parsed.ok) return { reason: parsed.rejection.reason, detail: parsed.rejection.detail };
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
