import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ServerConfig } from '../config/server-config';

/** How often a running broker says it is alive, and after how long without a beat it counts as gone. */
export const BROKER_HEARTBEAT_MS = 10_000;
export const BROKER_STALE_SECONDS = 30;

/**
 * With BROKER=nats the sessions live in the NATS cluster, not in a replica: every replica beats under this
 * one id, so devices stay online while any replica is alive and no replica's exit takes them offline.
 */
export const NATS_SESSION_OWNER = 'nats-cluster';

/**
 * This server instance's entry in `mqtt_brokers`. Devices record which instance holds their session
 * (devices.session_broker), so with several replicas on one database each marks only its own devices
 * offline, and the sessions of an instance that died (no beat for BROKER_STALE_SECONDS) are cleaned up by
 * the survivors or by the next start. With BROKER=nats all replicas share one entry (NATS_SESSION_OWNER).
 */
@Injectable()
export class BrokerRegistry {
  readonly id: string;
  private readonly shared: boolean;
  private readonly logger = new Logger(BrokerRegistry.name);
  private timer: NodeJS.Timeout | null = null;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    config: ServerConfig,
  ) {
    this.shared = config.broker === 'nats';
    this.id = this.shared ? NATS_SESSION_OWNER : randomUUID();
  }

  async join(): Promise<void> {
    await this.beat();
  }

  /** Beats every BROKER_HEARTBEAT_MS and then runs `afterBeat` (orphan cleanup); failures are logged. */
  keepBeating(afterBeat: () => Promise<unknown>): void {
    this.timer = setInterval(() => {
      this.beat()
        .then(afterBeat)
        .catch((error: Error) => this.logger.error(`broker heartbeat failed: ${error.message}`));
    }, BROKER_HEARTBEAT_MS);
    this.timer.unref();
  }

  async leave(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // the shared entry stays: the other replicas still hold the cluster's sessions
    if (this.shared) return;
    await this.dataSource.query('DELETE FROM mqtt_brokers WHERE id = $1', [this.id]);
  }

  private async beat(): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO mqtt_brokers (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
      [this.id],
    );
  }
}
