import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { CommandFilter } from '../devices/device-feed';
import { SqlFragment } from '../devices/device-selection';
import { ExecutionState, IN_FLIGHT_STATES } from './execution-state';

/** An execution whose command (or revert command) an event batch is about, locked. */
export interface ExecutionTarget {
  id: string;
  rollout_id: string;
  attempt: number;
  state: ExecutionState;
  command_id: string | null;
  revert_command_id: string | null;
  revert_state: ExecutionState | null;
}

/** A remote rollback's device whose command an event batch is about, locked. */
export interface RollbackTarget {
  rollback_id: string;
  device_id: string;
  command_id: string;
  state: ExecutionState;
}

/**
 * What the job event follower stores: its cursor over the devices' job event feed, and the engine's rows
 * the events move (executions, reverts, and the remote rollbacks' devices, whose events the engine applies
 * too: RollbacksModule imports this module, so it cannot be asked through a service of its own).
 */
@Injectable()
export class JobEventTargetsRepository {
  /**
   * The commands the engine follows: an execution's, a revert's, or a remote rollback's. As EXISTS per
   * event row (not IN over a list) so the feed's scan stops at its LIMIT.
   */
  readonly engineCommands: CommandFilter = (column) =>
    `(EXISTS (SELECT 1 FROM rollout_executions x WHERE x.command_id = ${column})
                     OR EXISTS (SELECT 1 FROM rollout_executions x WHERE x.revert_command_id = ${column})
                     OR EXISTS (SELECT 1 FROM rollback_devices r WHERE r.command_id = ${column}))`;

  /** The follower's position in the feed, locked for the pass (one follower at a time). */
  async lockCursor(manager: EntityManager): Promise<bigint> {
    const [{ event_seq: cursorText }] = (await manager.query(
      `SELECT event_seq::text FROM rollout_engine_cursor WHERE id = 1 FOR UPDATE`,
    )) as { event_seq: string }[];
    return BigInt(cursorText);
  }

  async setCursor(manager: EntityManager, seq: bigint): Promise<void> {
    await manager.query(`UPDATE rollout_engine_cursor SET event_seq = $1 WHERE id = 1`, [seq.toString()]);
  }

  /**
   * The commands whose work is in flight and has not moved for `staleSeconds` (and timed-out executions
   * of the last ten minutes: a device outcome still replaces the server's verdict), as a subquery.
   */
  staleCommands(staleSeconds: number): SqlFragment {
    if (!Number.isSafeInteger(staleSeconds) || staleSeconds <= 0) throw new Error(`bad stale seconds ${staleSeconds}`);
    return {
      sql: `
              SELECT command_id FROM rollout_executions
               WHERE state = ANY ($1::text[]) AND updated_at < now() - interval '${staleSeconds} seconds' AND command_id IS NOT NULL
              UNION ALL
              -- a device outcome still replaces the server's timeout verdict
              SELECT command_id FROM rollout_executions
               WHERE state = $2 AND finished_at > now() - interval '10 minutes' AND updated_at < now() - interval '${staleSeconds} seconds'
              UNION ALL
              SELECT revert_command_id FROM rollout_executions
               WHERE revert_state = ANY ($1::text[]) AND updated_at < now() - interval '${staleSeconds} seconds'
              UNION ALL
              SELECT command_id FROM rollback_devices
               WHERE state = ANY ($1::text[]) AND updated_at < now() - interval '${staleSeconds} seconds' AND command_id IS NOT NULL`,
      params: [IN_FLIGHT_STATES, ExecutionState.TimedOut],
    };
  }

  async lockExecutionsOf(manager: EntityManager, commandIds: string[]): Promise<ExecutionTarget[]> {
    return (await manager.query(
      `SELECT id, rollout_id, attempt, state, command_id, revert_command_id, revert_state
         FROM rollout_executions WHERE command_id = ANY ($1::uuid[]) OR revert_command_id = ANY ($1::uuid[])
         FOR UPDATE`,
      [commandIds],
    )) as ExecutionTarget[];
  }

  async lockRollbackDevicesOf(manager: EntityManager, commandIds: string[]): Promise<RollbackTarget[]> {
    return (await manager.query(
      `SELECT rollback_id, device_id, command_id, state FROM rollback_devices WHERE command_id = ANY ($1::uuid[]) FOR UPDATE`,
      [commandIds],
    )) as RollbackTarget[];
  }

  /** A rollback device's new state; `detail` (the outcome's reason) replaces the old one when given. */
  async setRollbackDeviceState(
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
