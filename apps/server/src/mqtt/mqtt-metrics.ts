import { Injectable, Logger } from '@nestjs/common';
import { RejectionReason } from '@cowroot/protocol';
import { Counter, Gauge } from 'prom-client';
import { MetricsService } from '../metrics/metrics.service';

/** The broker's Prometheus metrics, and the one place a rejected message is logged and counted. */
@Injectable()
export class MqttMetrics {
  private readonly logger = new Logger('MqttIngest');
  readonly connected: Gauge;
  private readonly messagesIn: Counter<'type'>;
  private readonly rejected: Counter<'reason'>;
  private readonly takeovers: Counter;

  constructor(metrics: MetricsService) {
    this.connected = metrics.gauge('cowroot_devices_connected', 'Devices with an open MQTT session');
    this.messagesIn = metrics.counter(
      'cowroot_mqtt_messages_in_total',
      'MQTT messages received from devices, by channel',
      ['type'],
    );
    this.rejected = metrics.counter(
      'cowroot_mqtt_messages_rejected_total',
      'MQTT messages refused or dropped, by reason (docs/protocol.md §7.1)',
      ['reason'],
    );
    // every reason is exported from the start, so a dashboard sees 0 rather than no series
    for (const reason of Object.values(RejectionReason)) this.rejected.inc({ reason }, 0);
    this.takeovers = metrics.counter(
      'cowroot_mqtt_session_takeovers_total',
      'MQTT connections that replaced a live session of the same device (client id)',
    );
  }

  received(type: string): void {
    this.messagesIn.inc({ type });
  }

  reject(deviceId: string, channel: string, reason: RejectionReason, detail: string): void {
    this.rejected.inc({ reason });
    this.logger.warn(`deviceId=${deviceId} channel=${channel} rejected reason=${reason}: ${detail.slice(0, 500)}`);
  }

  takeover(deviceId: string): void {
    this.takeovers.inc();
    this.logger.warn(
      `deviceId=${deviceId} session takeover: a new connection replaced the live one (two agents with one id?)`,
    );
  }
}
