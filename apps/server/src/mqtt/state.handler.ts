import { Injectable } from '@nestjs/common';
import { DeviceChannel, DeviceStateMessage, RejectionReason } from '@cowroot/protocol';
import { ServerConfig } from '../config/server-config';
import { DeviceStateWriter } from '../devices/device-state-writer.service';
import { parseDeviceMessage } from './device-message-parse';
import { DeviceMessageHandler, Rejection } from './device-message-handler';

/** `…/state` (docs/protocol.md §5.1): the device's whole state, applied unless older than what is stored. */
@Injectable()
export class StateHandler implements DeviceMessageHandler {
  readonly channel = DeviceChannel.State;

  constructor(
    private readonly config: ServerConfig,
    private readonly writer: DeviceStateWriter,
  ) {}

  async handle(deviceId: string, payload: Buffer): Promise<Rejection | null> {
    const parsed = parseDeviceMessage(payload, DeviceStateMessage, this.config.maxMqttMessageBytes);
    if (!parsed.ok) return parsed.rejection;
    const { value: report, refs } = parsed;
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
