import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { SYSTEM_ACTOR, deviceActor } from '../auth/actor';
import { AuditCoalescer, TAKEOVER_ACTION } from '../audit/audit-coalescer.service';
import { AuditService } from '../audit/audit.service';
import { BROKER_STALE_SECONDS, BrokerRegistry } from '../broker/broker-registry.service';
import { DeviceStatus } from './device.entity';
import { KeyedSerialQueue } from './keyed-serial-queue';
import { returningRows } from '../database/returning-rows';

/**
 * Online/offline and last seen, from MQTT connects, disconnects, last wills and presence messages.
 * Writes for one device run in arrival order (a quick disconnect/reconnect must end online); only real
 * transitions are audited, so a last will followed by the disconnect it caused yields one `offline`.
 * An online device names the server instance holding its session; an instance only ever takes its own
 * sessions offline, so a device that moved to another replica stays online. A device that flaps is
 * coalesced in the audit (AuditCoalescer): the devices row always has the truth, the log a bounded story.
 */
@Injectable()
export class DevicePresenceService {
  private readonly queue = new KeyedSerialQueue();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly broker: BrokerRegistry,
    private readonly coalescer: AuditCoalescer,
  ) {}

  markOnline(deviceId: string, reason: string, at = new Date(), connected = false): Promise<void> {
    return this.set(deviceId, true, reason, at, connected);
  }

  /**
   * `connectedAt`: the start of the connection that ended (BROKER=nats, whose events may arrive out of
   * order across replicas): the device stays online when a later connect was already recorded.
   */
  markOffline(deviceId: string, reason: string, at = new Date(), connectedAt?: Date): Promise<void> {
    return this.set(deviceId, false, reason, at, false, connectedAt ?? null);
  }

  /** Devices shown online (BROKER=nats: to re-send their open commands after a broker failover). */
  async onlineDeviceIds(): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.dataSource.query(
      `SELECT id FROM devices WHERE online AND status = '${DeviceStatus.Active}'`,
    );
    return rows.map((row) => row.id);
  }

  /**
   * A new connection replaced the device's live session. Audited through the coalescer: once per window
   * per device however often two agents with one id kick each other out.
   */
  recordTakeover(deviceId: string, at = new Date()): Promise<void> {
    // in the device's queue: the next takeover plans against this one's applied count
    return this.queue.run(deviceId, () => this.auditTakeover(deviceId, at));
  }

  private async auditTakeover(deviceId: string, at: Date): Promise<void> {
    const plan = this.coalescer.plan(
      [
        {
          actor: deviceActor(deviceId),
          action: TAKEOVER_ACTION,
          subjectType: 'device',
          subjectId: deviceId,
          after: { at: at.toISOString() },
          reason: 'a new MQTT connection with this client id replaced the live session',
        },
      ],
      at.getTime(),
    );
    if (plan.entries.length > 0) await this.audit.recordMany(plan.entries);
    plan.apply();
  }

  /** At shutdown: this instance's sessions end with it. One statement whatever the fleet size. */
  async markSessionsOffline(deviceIds: string[], reason: string): Promise<number> {
    await this.queue.drain();
    return this.dataSource.transaction((manager) =>
      this.takeOffline(
        manager,
        `UPDATE devices SET online = false, session_broker = NULL, updated_at = now()
          WHERE online AND session_broker = $1 AND id = ANY($2::text[]) RETURNING id`,
        [this.broker.id, deviceIds],
        reason,
      ),
    );
  }

  /**
   * Devices shown online whose session sat on an instance that stopped beating (it crashed, or this is
   * the first start after a crash) are offline: their TCP connections died with it.
   */
  async reapOrphans(): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const reaped = await this.takeOffline(
        manager,
        `UPDATE devices d SET online = false, session_broker = NULL, updated_at = now()
          WHERE d.online AND NOT EXISTS (
            SELECT 1 FROM mqtt_brokers b
             WHERE b.id = d.session_broker AND b.heartbeat_at > now() - make_interval(secs => $1))
          RETURNING d.id`,
        [BROKER_STALE_SECONDS],
        'the server instance holding the MQTT session stopped (crash or restart)',
      );
      await manager.query(`DELETE FROM mqtt_brokers WHERE heartbeat_at < now() - make_interval(secs => $1)`, [
        BROKER_STALE_SECONDS * 10,
      ]);
      return reaped;
    });
  }

  /**
   * BROKER=nats, at a replica's start: the broker's list of connected devices replaces what the table
   * says, for what happened while no replica was listening to connect events. A listed device offline
   * here becomes online when its connection is newer than the last connect recorded (one whose connect
   * event was handled, and perhaps its disconnect since, is the event path's); an online device not
   * listed becomes offline unless it connected after `listedAt` (the event path already has it); with
   * `listedAt` null (a listing that may lack connections) nobody is taken offline.
   * last_seen_at cannot order these: reports from the JetStream backlog move it to their ingest time.
   * Set-based, so the cost is a few statements whatever the fleet size.
   * @returns the devices this took online (their open commands are re-sent) and how many it took offline
   */
  async reconcileConnected(
    connected: Array<{ deviceId: string; start: Date }>,
    listedAt: Date | null,
    reason: string,
  ): Promise<{ online: string[]; offline: number }> {
    await this.queue.drain();
    return this.dataSource.transaction(async (manager) => {
      const online = await this.transition(
        manager,
        true,
        `UPDATE devices d SET online = true, session_broker = $3, updated_at = now(),
                last_connected_at = c.start, last_seen_at = GREATEST(d.last_seen_at, c.start)
           FROM unnest($1::text[], $2::timestamptz[]) AS c(id, start)
          WHERE d.id = c.id AND NOT d.online AND d.status = '${DeviceStatus.Active}'
            AND (d.last_connected_at IS NULL OR d.last_connected_at < c.start)
          RETURNING d.id`,
        [connected.map((c) => c.deviceId), connected.map((c) => c.start.toISOString()), this.broker.id],
        reason,
      );
      if (!listedAt) return { online, offline: 0 };
      const offline = await this.takeOffline(
        manager,
        `UPDATE devices SET online = false, session_broker = NULL, updated_at = now()
          WHERE online AND status = '${DeviceStatus.Active}' AND id <> ALL ($1::text[])
            AND (last_connected_at IS NULL OR last_connected_at < $2)
          RETURNING id`,
        [connected.map((c) => c.deviceId), listedAt],
        reason,
      );
      return { online, offline };
    });
  }

  /** Resolves when every queued presence write has finished. */
  drain(): Promise<void> {
    return this.queue.drain();
  }

  private async takeOffline(
    manager: EntityManager,
    sql: string,
    parameters: unknown[],
    reason: string,
  ): Promise<number> {
    return (await this.transition(manager, false, sql, parameters, reason)).length;
  }

  /** Runs a set-based presence UPDATE … RETURNING id and audits each device it moved to `online`. */
  private async transition(
    manager: EntityManager,
    online: boolean,
    sql: string,
    parameters: unknown[],
    reason: string,
  ): Promise<string[]> {
    const rows = await returningRows<{ id: string }>(manager, sql, parameters);
    await this.audit.recordMany(
      rows.map((row) => ({
        actor: SYSTEM_ACTOR,
        action: online ? 'device.state.online' : 'device.state.offline',
        subjectType: 'device',
        subjectId: row.id,
        before: { online: !online },
        after: { online },
        reason,
      })),
      manager,
    );
    return rows.map((row) => row.id);
  }

  private set(
    deviceId: string,
    online: boolean,
    reason: string,
    at: Date,
    connected: boolean,
    connectedAt: Date | null = null,
  ): Promise<void> {
    return this.queue.run(deviceId, async () => {
      const plan = await this.dataSource.transaction(async (manager) => {
        // decommissioned devices stay as they were; offline only from the instance holding the session;
        // RETURNING tells whether this was a transition
        const rows = await returningRows<{ was_online: boolean }>(
          manager,
          `UPDATE devices AS d SET online = $2, last_seen_at = GREATEST(d.last_seen_at, $3),
                  last_connected_at = CASE WHEN $4 THEN $3 ELSE d.last_connected_at END,
                  session_broker = CASE WHEN $2 THEN $5 ELSE NULL END, updated_at = now()
             FROM (SELECT id, online AS was_online FROM devices WHERE id = $1 FOR UPDATE) AS old
            WHERE d.id = old.id AND d.status = '${DeviceStatus.Active}' AND ($2 OR d.session_broker IS NULL OR d.session_broker = $5)
              AND ($2 OR $6::timestamptz IS NULL OR d.last_connected_at IS NULL OR d.last_connected_at <= $6)
            RETURNING old.was_online`,
          [deviceId, online, at, connected, this.broker.id, connectedAt],
        );
        if (rows.length === 0 || rows[0].was_online === online) return null;
        const transition = this.coalescer.plan([
          {
            actor: deviceActor(deviceId),
            action: online ? 'device.state.online' : 'device.state.offline',
            subjectType: 'device',
            subjectId: deviceId,
            before: { online: rows[0].was_online },
            after: { online },
            reason,
          },
        ]);
        await this.audit.recordMany(transition.entries, manager);
        return transition;
      });
      plan?.apply();
    });
  }
}
