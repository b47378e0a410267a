import { Injectable } from '@nestjs/common';
import { DeviceChannel, ErrorCode, PresenceStatus, parsePresence } from '@cowroot/protocol';
import { ServerConfig } from '../config/server-config';
import { DevicePresenceService } from '../devices/device-presence.service';
import { DeviceMessageHandler, SessionRef } from './device-message-handler';
import { DeviceSessions } from './device-sessions';
import { MqttMetrics } from './mqtt-metrics';

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
    private readonly metrics: MqttMetrics,
  ) {}

  async handle(deviceId: string, payload: Buffer, session: SessionRef): Promise<void> {
    if (payload.length > this.config.maxMqttMessageBytes) {
      return this.metrics.reject(deviceId, this.channel, ErrorCode.MessageTooLarge, `${payload.length} bytes`);
    }
    const parsed = parsePresence(payload);
    if (!parsed.ok) return this.metrics.reject(deviceId, this.channel, parsed.code, parsed.message);
    if (!this.sessions.isCurrentOrNone(deviceId, session) || this.sessions.closing) return;
    if (parsed.value.status === PresenceStatus.Online) {
      await this.presence.markOnline(deviceId, 'presence message');
    } else {
      await this.presence.markOffline(deviceId, 'last will: connection lost');
    }
  }

  drain(): Promise<void> {
    return this.presence.drain();
  }
}
