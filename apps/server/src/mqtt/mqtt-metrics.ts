import { Injectable, Logger } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { MetricsService } from '../metrics/metrics.service';

/** Why an inbound MQTT message was not applied: the protocol's ErrorCode values plus broker-side reasons. */
export type RejectionReason = string;

/** The broker's Prometheus metrics, and the one place a rejected message is logged and counted. */
@Injectable()
export class MqttMetrics {
  private readonly logger = new Logger('MqttIngest');
  readonly connected: Gauge;
  private readonly messagesIn: Counter<'type'>;
  private readonly rejected: Counter<'reason'>;

  constructor(metrics: MetricsService) {
    this.connected = metrics.gauge('cowroot_devices_connected', 'Devices with an open MQTT session');
    this.messagesIn = metrics.counter(
      'cowroot_mqtt_messages_in_total',
      'MQTT messages received from devices, by channel',
      ['type'],
    );
    this.rejected = metrics.counter(
      'cowroot_mqtt_messages_rejected_total',
      'MQTT messages refused or dropped, by reason',
      ['reason'],
    );
  }

  received(type: string): void {
    this.messagesIn.inc({ type });
  }

  reject(deviceId: string, channel: string, reason: RejectionReason, detail: string): void {
    this.rejected.inc({ reason });
    this.logger.warn(`deviceId=${deviceId} channel=${channel} rejected reason=${reason}: ${detail.slice(0, 500)}`);
  }
}
