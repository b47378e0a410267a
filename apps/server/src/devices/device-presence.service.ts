import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { SYSTEM_ACTOR, deviceActor } from '../auth/actor';
import { AuditService } from '../audit/audit.service';
import { recordAuditInChunks } from './audit-in-chunks';
import { KeyedSerialQueue } from './keyed-serial-queue';
import { returningRows } from './returning-rows';

/**
 * Online/offline and last seen, from MQTT connects, disconnects, last wills and presence messages.
 * Writes for one device run in arrival order (a quick disconnect/reconnect must end online); only real
 * transitions are audited, so a last will followed by the disconnect it caused yields one `offline`.
 */
@Injectable()
export class DevicePresenceService {
  private readonly queue = new KeyedSerialQueue();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
  ) {}

  markOnline(deviceId: string, reason: string, at = new Date(), connected = false): Promise<void> {
    return this.set(deviceId, true, reason, at, connected);
  }

  markOffline(deviceId: string, reason: string, at = new Date()): Promise<void> {
    return this.set(deviceId, false, reason, at, false);
  }

  /**
   * Marks every device offline that the database still shows online: at boot (a previous process died
   * with devices connected) and at shutdown. One statement and one audit insert, whatever the fleet size.
   */
  async markAllOffline(reason: string, onlyIds?: string[]): Promise<number> {
    await this.queue.drain();
    return this.dataSource.transaction(async (manager) => {
      const rows = await returningRows<{ id: string }>(
        manager,
        `UPDATE devices SET online = false, updated_at = now()
          WHERE online AND ($1::text[] IS NULL OR id = ANY($1::text[])) RETURNING id`,
        [onlyIds ?? null],
      );
      await recordAuditInChunks(
        this.audit,
        rows.map((row) => ({
          actor: SYSTEM_ACTOR,
          action: 'device.state.offline',
          subjectType: 'device',
          subjectId: row.id,
          before: { online: true },
          after: { online: false },
          reason,
        })),
        manager,
      );
      return rows.length;
    });
  }

  /** Resolves when every queued presence write has finished. */
  drain(): Promise<void> {
    return this.queue.drain();
  }

  private set(deviceId: string, online: boolean, reason: string, at: Date, connected: boolean): Promise<void> {
    return this.queue.run(deviceId, () =>
      this.dataSource.transaction(async (manager) => {
        // the WHERE keeps decommissioned devices as they were; RETURNING tells whether this was a transition
        const rows = await returningRows<{ was_online: boolean }>(
          manager,
          `UPDATE devices AS d SET online = $2, last_seen_at = GREATEST(d.last_seen_at, $3),
                  last_connected_at = CASE WHEN $4 THEN $3 ELSE d.last_connected_at END, updated_at = now()
             FROM (SELECT id, online AS was_online FROM devices WHERE id = $1 FOR UPDATE) AS old
            WHERE d.id = old.id AND d.status = 'active'
            RETURNING old.was_online`,
          [deviceId, online, at, connected],
        );
        if (rows.length === 0 || rows[0].was_online === online) return;
        await this.audit.record(
          {
            actor: deviceActor(deviceId),
            action: online ? 'device.state.online' : 'device.state.offline',
            subjectType: 'device',
            subjectId: deviceId,
            before: { online: rows[0].was_online },
            after: { online },
            reason,
          },
          manager,
        );
      }),
    );
  }
}
