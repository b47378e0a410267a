import { Injectable, Logger } from '@nestjs/common';
import { DeviceChannel, JobEventMessage, RejectionReason } from '@cowroot/protocol';
import { ServerConfig } from '../config/server-config';
import { JobEventRecorder } from '../devices/job-event-recorder.service';
import { parseDeviceMessage } from './device-message-parse';
import { DeviceMessageHandler, Rejection } from './device-message-handler';

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
  ) {}

  async handle(deviceId: string, payload: Buffer): Promise<Rejection | null> {
    const parsed = parseDeviceMessage(payload, JobEventMessage, this.config.maxMqttMessageBytes);
    if (!parsed.ok) return parsed.rejection;
    const { value: event, refs } = parsed;
    const outcome = await this.recorder.record(deviceId, event);
    switch (outcome.result) {
      case 'unknown-command':
        return {
          reason: RejectionReason.UnknownCommandId,
          detail: `no command ${event.commandId} was sent to this device`,
          refs,
        };
      case 'unstorable':
        return { reason: RejectionReason.Unstorable, detail: outcome.detail, refs };
      case 'duplicate':
        this.logger.debug(
          `deviceId=${deviceId} commandId=${event.commandId} eventId=${event.eventId} duplicate dropped`,
        );
        return null;
      case 'stored':
        if (outcome.changed)
          // debug: a wave makes several per device; the command's status and the audit keep them
          this.logger.debug(`deviceId=${deviceId} commandId=${event.commandId} status=${outcome.status}`);
        return null;
    }
  }

  drain(): Promise<void> {
    return this.recorder.drain();
  }
}
