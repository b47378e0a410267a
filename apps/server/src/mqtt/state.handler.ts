import { Injectable } from '@nestjs/common';
import { DeviceChannel, ErrorCode, parseDeviceState } from '@cowroot/protocol';
import { ServerConfig } from '../config/server-config';
import { DeviceStateWriter } from '../devices/device-state-writer.service';
import { DeviceMessageHandler } from './device-message-handler';
import { MqttMetrics } from './mqtt-metrics';

/** `…/state` (docs/protocol.md §5.1): the device's whole state, applied unless older than what is stored. */
@Injectable()
export class StateHandler implements DeviceMessageHandler {
  readonly channel = DeviceChannel.State;

  constructor(
    private readonly config: ServerConfig,
    private readonly writer: DeviceStateWriter,
    private readonly metrics: MqttMetrics,
  ) {}

  async handle(deviceId: string, payload: Buffer): Promise<void> {
    if (payload.length > this.config.maxMqttMessageBytes) {
      return this.metrics.reject(deviceId, this.channel, ErrorCode.MessageTooLarge, `${payload.length} bytes`);
    }
    const parsed = parseDeviceState(payload);
    if (!parsed.ok) return this.metrics.reject(deviceId, this.channel, parsed.code, parsed.message);
    const outcome = await this.writer.submit(deviceId, parsed.value);
    if (outcome === 'stale') {
      this.metrics.reject(
        deviceId,
        this.channel,
        'STALE_STATE',
        `seq ${parsed.value.seq} sentAt ${parsed.value.sentAt} is not newer`,
      );
    }
  }

  drain(): Promise<void> {
    return this.writer.drain();
  }
}
