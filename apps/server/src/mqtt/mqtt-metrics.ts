import { Injectable, Logger } from '@nestjs/common';
import { RejectionReason } from '@cowroot/protocol';
import { Counter, Gauge } from 'prom-client';
import { MetricsService } from '../metrics/metrics.service';
import { NoticeBudget } from './notice-budget';
import { printable } from './printable';

/** The broker's Prometheus metrics, and the one place a rejected message is logged and counted. */
@Injectable()
export class MqttMetrics {
  private readonly logger = new Logger('MqttIngest');
  readonly connected: Gauge;
  private readonly messagesIn: Counter<'type'>;
  private readonly rejected: Counter<'reason'>;
  private readonly takeovers: Counter;
  private readonly logBudget = new NoticeBudget();

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

  /**
   * Counts every rejection; logs a few per device per second at warn (a flooding device must not flood the
   * log), the rest at debug. The detail may quote what the device sent: control characters are escaped.
   */
  reject(deviceId: string, channel: string, reason: RejectionReason, detail: string): void {
    this.rejected.inc({ reason });
    const suppressed = this.logBudget.take(deviceId, Date.now());
    const line = `deviceId=${deviceId} channel=${channel} rejected reason=${reason}: ${printable(detail.slice(0, 500))}`;
    if (suppressed === null) this.logger.debug(line);
    else this.logger.warn(suppressed > 0 ? `${line} (${suppressed} more rejections not logged at warn)` : line);
  }

  takeover(deviceId: string): void {
    this.takeovers.inc();
    this.logger.warn(
      `deviceId=${deviceId} session takeover: a new connection replaced the live one (two agents with one id?)`,
    );
  }
}
