import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { SYSTEM_ACTOR } from '../auth/actor';
import { AuditCoalescer } from '../audit/audit-coalescer.service';
import { AuditService } from '../audit/audit.service';
import { BROKER_STALE_SECONDS, BrokerRegistry } from '../broker/broker-registry.service';
import { DeviceStatus } from './device.entity';
import { GroupCommit } from './group-commit';
import { PresenceRow, PresenceWrite, planPresence } from './presence-batch';
import { returningRows } from '../database/returning-rows';

/**
 * Online/offline and last seen, from MQTT connects, disconnects, last wills and presence messages.
 * Writes for one device run in arrival order (a quick disconnect/reconnect must end online); only real
 * transitions are audited, so a last will followed by the disconnect it caused yields one `offline`.
 * An online device names the server instance holding its session; an instance only ever takes its own
 * sessions offline, so a device that moved to another replica stays online. A device that flaps is
 * coalesced in the audit (AuditCoalescer): the devices row always has the truth, the log a bounded story.
 * Writes are group-committed (GroupCommit): a reconnect storm's connects, presence messages and takeovers
 * of one turn share one transaction of three statements, in arrival order (planPresence).
 */
@Injectable()
export class DevicePresenceService {
  private readonly batches = new GroupCommit<PresenceWrite, void>({
    logger: new Logger(DevicePresenceService.name),
    noun: 'presence write',
    label: (write) => `deviceId=${write.deviceId}`,
    write: (batch) => this.write(batch),
  });

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
    // in the presence batches: a takeover plans against the applied count of the one before
    return this.batches.submit({ kind: 'takeover', deviceId, at });
  }

  /** At shutdown: this instance's sessions end with it. One statement whatever the fleet size. */
  async markSessionsOffline(deviceIds: string[], reason: string): Promise<number> {
    await this.batches.drain();
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
    await this.batches.drain();
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
    return this.batches.drain();
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
    return this.batches.submit({ kind: 'set', deviceId, online, reason, at, connected, connectedAt });
  }

  /** One batch: lock the rows, apply the writes in order (planPresence), one UPDATE, one audit INSERT. */
  private async write(batch: PresenceWrite[]): Promise<void[]> {
    const plan = await this.dataSource.transaction(async (manager) => {
      const ids = [...new Set(batch.filter((w) => w.kind === 'set').map((w) => w.deviceId))].sort();
      // ORDER BY id: every multi-row locker takes locks in the same order, so none deadlock
      const rows: PresenceRow[] =
        ids.length === 0
          ? []
          : await manager.query(
              `SELECT id, status, online, session_broker, last_connected_at
                 FROM devices WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
              [ids],
            );
      const { updates, audits } = planPresence(rows, batch, this.broker.id);
      if (updates.length > 0) {
        await manager.query(
          `UPDATE devices AS d SET online = v.online, session_broker = v.session_broker,
                  last_connected_at = COALESCE(v.last_connected_at, d.last_connected_at),
                  last_seen_at = GREATEST(d.last_seen_at, v.seen_at), updated_at = now()
             FROM jsonb_to_recordset($1::jsonb) AS v(
               id text, online boolean, session_broker text, last_connected_at timestamptz, seen_at timestamptz)
            WHERE d.id = v.id`,
          [JSON.stringify(updates)],
        );
      }
      const coalesced = this.coalescer.plan(audits);
      await this.audit.recordMany(coalesced.entries, manager);
      return coalesced;
    });
    plan.apply();
    return batch.map(() => undefined);
  }
}
