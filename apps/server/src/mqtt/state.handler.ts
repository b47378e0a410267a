import { Injectable } from '@nestjs/common';
import {
  DeviceChannel,
  DeviceStateMessage,
  RejectionReason,
  decodeJson,
  rejectionForParseError,
  validateAs,
} from '@cowroot/protocol';
import { ServerConfig } from '../config/server-config';
import { DeviceStateWriter } from '../devices/device-state-writer.service';
import { DeviceMessageHandler, Rejection } from './device-message-handler';
import { messageRefs } from './message-refs';

/** `…/state` (docs/protocol.md §5.1): the device's whole state, applied unless older than what is stored. */
@Injectable()
export class StateHandler implements DeviceMessageHandler {
  readonly channel = DeviceChannel.State;

  constructor(
    private readonly config: ServerConfig,
    private readonly writer: DeviceStateWriter,
  ) {}

  async handle(deviceId: string, payload: Buffer): Promise<Rejection | null> {
    if (payload.length > this.config.maxMqttMessageBytes) {
      return { reason: RejectionReason.MessageTooLarge, detail: `${payload.length} bytes` };
    }
    const decoded = decodeJson(payload);
    if (!decoded.ok) return { reason: rejectionForParseError(decoded.code), detail: decoded.message };
    const refs = messageRefs(decoded.value);
    const parsed = validateAs(DeviceStateMessage, decoded.value);
    if (!parsed.ok) return { reason: rejectionForParseError(parsed.code), detail: parsed.message, refs };
    const report = parsed.value;
    const { outcome, detail } = await this.writer.submit(deviceId, report);
    switch (outcome) {
      case 'applied':
        return null;
      case 'stale':
        return {
          reason: RejectionReason.StaleState,
          detail: `seq ${report.seq} sentAt ${report.sentAt} is not newer`,
          refs,
        };
      case 'unknown-device':
        return { reason: RejectionReason.DeviceNotActive, detail: 'the device is not active', refs };
      case 'unstorable':
        return { reason: RejectionReason.Unstorable, detail: detail ?? 'the database refused it', refs };
    }
  }

  drain(): Promise<void> {
    return this.writer.drain();
  }
}
