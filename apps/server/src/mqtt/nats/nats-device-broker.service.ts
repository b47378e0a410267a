import { Injectable, Logger } from '@nestjs/common';
import { headers } from 'nats';
import { DeviceBroker } from '../../broker/device-broker';
import { BrokerTokenService } from './broker-token.service';
import { NatsConnections } from './nats-connections';
import { queuedCommandSubject } from './nats-subjects';

/** How long a command publish may wait for JetStream (a stream leader election takes up to ~7 s). */
const PUBLISH_TIMEOUT_MS = 5000;

/**
 * The DEVICE_BROKER port on NATS (BROKER=nats): commands go into the device's MQTT session through
 * JetStream, so a device on any node gets them at once, and an offline one at its next connect; revoking the
 * device's JWTs ends its access on every node. Reports and presence arrive through NatsReportConsumer and
 * NatsPresence.
 */
@Injectable()
export class NatsDeviceBroker implements DeviceBroker {
  readonly kind = 'nats' as const;
  readonly queuesForOfflineDevices = true;
  private readonly logger = new Logger(NatsDeviceBroker.name);
  private readonly resendListeners: Array<(deviceId: string, recentToo?: boolean) => void> = [];

  constructor(
    private readonly nats: NatsConnections,
    private readonly tokens: BrokerTokenService,
  ) {}

  isListening(): boolean {
    return this.nats.isConnected();
  }

  /** Presence is the devices table's (from NATS connect events, on whichever replica took them). */
  isConnected(): boolean {
    return false;
  }

  async publishCommand(deviceId: string, payload: Buffer): Promise<boolean> {
    const h = headers();
    h.set('Nmqtt-Pub', '1');
    try {
      await this.nats.js.publish(queuedCommandSubject(deviceId), payload, { headers: h, timeout: PUBLISH_TIMEOUT_MS });
      return true;
    } catch (error) {
      // not stored: the command stays `queued` and the queued-command poll publishes it again
      this.logger.warn(`deviceId=${deviceId} command not stored by JetStream: ${(error as Error).message}`);
      return false;
    }
  }

  disconnectDevice(deviceId: string): Promise<boolean> {
    return this.tokens.revoke(deviceId);
  }

  onResendNeeded(listener: (deviceId: string, recentToo?: boolean) => void): void {
    this.resendListeners.push(listener);
  }

  /** NatsPresence: the device (re)connected, or its session may have lost commands. */
  resendNeeded(deviceId: string, recentToo = false): void {
    for (const listener of this.resendListeners) listener(deviceId, recentToo);
  }
}
