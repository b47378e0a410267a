import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { CommandFilter } from '../devices/device-feed';
import { SqlFragment } from '../devices/device-selection';
import { ExecutionState, IN_FLIGHT_STATES } from '../rollouts/execution-state';
import type { RollbackTarget } from '../rollouts/rollback-outcome-port';

/** A `rollbacks` row as the pg driver returns it. */
export interface RollbackRow {
  id: string;
  target_type: 'device' | 'tag' | 'rollout';
  target: string;
  snapshot: string | null;
  reason: string | null;
  created_by_name: string;
  created_at: Date;
}

/** A `rollback_devices` row as the detail shows it. */
export interface RollbackDeviceRow {
  device_id: string;
  snapshot: string | null;
  state: string;
  detail: string | null;
  command_id: string | null;
}

/** A device's planned outcome, as create() stores it. */
export interface RollbackDeviceInput {
  deviceId: string;
  snapshot: string | null;
  state: string;
  detail: string | null;
  commandId: string | null;
}

/**
 * Data access of the remote rollbacks (`rollbacks`, `rollback_devices`): every statement on those tables,
 * for the service's own use and for the rollout engine's follower through the service. Every method
 * that writes takes the caller's EntityManager.
 */
@Injectable()
export class RollbackStore {
  async insert(
    manager: EntityManager,
    row: Omit<RollbackRow, 'created_by_name' | 'created_at'> & { createdBy: string; createdByName: string },
  ): Promise<void> {
    await manager.query(
      `INSERT INTO rollbacks (id, target_type, target, snapshot, reason, created_by, created_by_name) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [row.id, row.target_type, row.target, row.snapshot, row.reason, row.createdBy, row.createdByName],
    );
  }

  /** One statement for all of a rollback's devices (a tag may hold thousands). */
  async insertDevices(manager: EntityManager, rollbackId: string, devices: RollbackDeviceInput[]): Promise<void> {
    if (devices.length === 0) return;
    await manager.query(
      `INSERT INTO rollback_devices (rollback_id, device_id, snapshot, command_id, state, detail)
       SELECT $1, u.device_id, u.snapshot, u.command_id, u.state, u.detail
         FROM unnest($2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[]) AS u(device_id, snapshot, command_id, state, detail)`,
      [
        rollbackId,
        devices.map((o) => o.deviceId),
        devices.map((o) => o.snapshot),
        devices.map((o) => o.commandId),
        devices.map((o) => o.state),
        devices.map((o) => o.detail),
      ],
    );
  }

  /** `id` must be a UUID (the caller checks: the column is uuid). */
  async find(manager: EntityManager, id: string): Promise<RollbackRow | undefined> {
    const rows = (await manager.query(
      `SELECT id, target_type, target, snapshot, reason, created_by_name, created_at FROM rollbacks WHERE id = $1`,
      [id],
    )) as RollbackRow[];
    return rows[0];
  }

  async devicesOf(manager: EntityManager, rollbackId: string): Promise<RollbackDeviceRow[]> {
    return (await manager.query(
      `SELECT device_id, snapshot, state, detail, command_id FROM rollback_devices WHERE rollback_id = $1 ORDER BY device_id`,
      [rollbackId],
    )) as RollbackDeviceRow[];
  }

  /** As EXISTS per row of the caller (not IN over a list) so the caller's scan can stop at its LIMIT. */
  readonly commandFilter: CommandFilter = (column) =>
    `EXISTS (SELECT 1 FROM rollback_devices r WHERE r.command_id = ${column})`;

  staleCommands(staleSeconds: number, firstParam: number): SqlFragment {
    // written into the SQL text as an interval: integers only
    if (!Number.isSafeInteger(staleSeconds) || staleSeconds <= 0) throw new Error(`bad stale seconds ${staleSeconds}`);
    if (!Number.isSafeInteger(firstParam) || firstParam <= 0) throw new Error(`bad first parameter ${firstParam}`);
    return {
      sql: `SELECT command_id FROM rollback_devices
               WHERE state = ANY ($${firstParam}::text[]) AND updated_at < now() - interval '${staleSeconds} seconds' AND command_id IS NOT NULL`,
      params: [IN_FLIGHT_STATES],
    };
  }

  async lockDevicesOf(manager: EntityManager, commandIds: string[]): Promise<RollbackTarget[]> {
    return (await manager.query(
      `SELECT rollback_id AS "rollbackId", device_id AS "deviceId", command_id AS "commandId", state
         FROM rollback_devices WHERE command_id = ANY ($1::uuid[]) FOR UPDATE`,
      [commandIds],
    )) as RollbackTarget[];
  }

  async setDeviceState(
    manager: EntityManager,
    target: { rollbackId: string; deviceId: string },
    state: ExecutionState,
    detail: string | null,
  ): Promise<void> {
    await manager.query(
      `UPDATE rollback_devices SET state = $3, detail = coalesce($4, detail), updated_at = now() WHERE rollback_id = $1 AND device_id = $2`,
      [target.rollbackId, target.deviceId, state, detail],
    );
  }
}
