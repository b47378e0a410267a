import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { CommandFilter } from '../devices/device-feed';
import { SqlFragment } from '../devices/device-selection';
import { ExecutionState, IN_FLIGHT_STATES } from './execution-state';
import { RollbackOutcomeLink, RollbackTarget } from './rollback-outcome-port';

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

/**
 * What the job event follower stores: its cursor over the devices' job event feed, and the engine's rows
 * the events move (executions, reverts). The remote rollbacks' devices, whose events the engine applies
 * too, are read and moved through the rollbacks feature's RollbackOutcomePort.
 */
@Injectable()
export class JobEventTargetsRepository {
  constructor(private readonly rollbacks: RollbackOutcomeLink) {}

  /**
   * The commands the engine follows: an execution's, a revert's, or a remote rollback's. As EXISTS per
   * event row (not IN over a list) so the feed's scan stops at its LIMIT.
   */
  readonly engineCommands: CommandFilter = (column) => {
    const rollbacks = this.rollbacks.attached;
    return `(EXISTS (SELECT 1 FROM rollout_executions x WHERE x.command_id = ${column})
                     OR EXISTS (SELECT 1 FROM rollout_executions x WHERE x.revert_command_id = ${column})${
                       rollbacks ? `\n                     OR ${rollbacks.rollbackCommands(column)}` : ''
                     })`;
  };

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
    const rollbacks = this.rollbacks.attached?.staleRollbackCommands(staleSeconds, 3);
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
               WHERE revert_state = ANY ($1::text[]) AND updated_at < now() - interval '${staleSeconds} seconds'${
                 rollbacks ? `\n              UNION ALL\n${rollbacks.sql}` : ''
               }`,
      params: [IN_FLIGHT_STATES, ExecutionState.TimedOut, ...(rollbacks?.params ?? [])],
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

  /** The remote rollbacks' devices whose commands these are, locked; none without the rollbacks feature. */
  async lockRollbackDevicesOf(manager: EntityManager, commandIds: string[]): Promise<RollbackTarget[]> {
    return (await this.rollbacks.attached?.lockRollbackDevicesOf(manager, commandIds)) ?? [];
  }

  async setRollbackDeviceState(
    manager: EntityManager,
    target: { rollbackId: string; deviceId: string },
    state: ExecutionState,
    detail: string | null,
  ): Promise<void> {
    const rollbacks = this.rollbacks.attached;
    // the target came from lockRollbackDevicesOf, so the port is there
    if (!rollbacks) throw new Error('no rollback outcome port attached');
    await rollbacks.setRollbackDeviceState(manager, target, state, detail);
  }
}
