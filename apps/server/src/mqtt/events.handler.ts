import { Injectable, Logger } from '@nestjs/common';
import { DeviceChannel, ErrorCode, parseJobEvent } from '@cowroot/protocol';
import { ServerConfig } from '../config/server-config';
import { JobEventRecorder } from '../devices/job-event-recorder.service';
import { DeviceMessageHandler } from './device-message-handler';
import { MqttMetrics } from './mqtt-metrics';

/**
 * `…/events` (docs/protocol.md §5.2): job events for commands. An event for a command the server never
 * sent to this device is rejected; a redelivered event is stored once.
 */
@Injectable()
export class EventsHandler implements DeviceMessageHandler {
  readonly channel = DeviceChannel.Events;
  private readonly logger = new Logger('MqttIngest');

  constructor(
    private readonly config: ServerConfig,
    private readonly recorder: JobEventRecorder,
    private readonly metrics: MqttMetrics,
  ) {}

  async handle(deviceId: string, payload: Buffer): Promise<void> {
    if (payload.length > this.config.maxMqttMessageBytes) {
      return this.metrics.reject(deviceId, this.channel, ErrorCode.MessageTooLarge, `${payload.length} bytes`);
    }
    const parsed = parseJobEvent(payload);
    if (!parsed.ok) return this.metrics.reject(deviceId, this.channel, parsed.code, parsed.message);
    const event = parsed.value;
    const outcome = await this.recorder.record(deviceId, event);
    if (outcome.result === 'unknown-command') {
      this.metrics.reject(
        deviceId,
        this.channel,
        'UNKNOWN_COMMAND_ID',
        `no command ${event.commandId} was sent to this device`,
      );
    } else if (outcome.result === 'duplicate') {
      this.logger.debug(`deviceId=${deviceId} commandId=${event.commandId} eventId=${event.eventId} duplicate dropped`);
    } else if (outcome.changed) {
      // debug: a wave makes several per device; the command's status and the audit keep them
      this.logger.debug(`deviceId=${deviceId} commandId=${event.commandId} status=${outcome.status}`);
    }
  }

  drain(): Promise<void> {
    return this.recorder.drain();
  }
}
