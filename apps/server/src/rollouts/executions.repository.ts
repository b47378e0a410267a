import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { DeviceFeed } from '../devices/device-feed';
import { DeviceStatus } from '../devices/device.entity';
import { returningRows } from '../database/returning-rows';
import { ExecutionState, FAILURE_STATES, IN_FLIGHT_STATES } from './execution-state';
import { ExecutionRow, HistoryEntry, HistoryRow } from './rollout-rows';
import { StateCounts } from './wave-criterion';

/** An execution an UPDATE … RETURNING changed: what the history and audit entries need. */
export interface ChangedExecution {
  id: string;
  attempt: number;
  device_id: string;
  rollout_id: string;
  from_state: ExecutionState;
  command_id: string | null;
  failure_reason: string | null;
}

/**
 * Data access of the executions (one row per device and rollout) and their history, outside the queue
 * the planner fills and the dispatcher drains (wave-queue.repository.ts). Every method takes the
 * caller's EntityManager.
 */
@Injectable()
export class ExecutionsRepository {
  constructor(private readonly devices: DeviceFeed) {}

  /**
   * The one INSERT into rollout_execution_history for single transitions (dispatch, events, timeouts,
   * cancels, retries, reverts): one statement whatever the number of entries. Entries whose event id is
   * already recorded are skipped. @returns the event ids that were inserted
   */
  async recordHistory(manager: EntityManager, entries: HistoryEntry[]): Promise<Set<string>> {
    if (entries.length === 0) return new Set();
    const rows = (await manager.query(
      `INSERT INTO rollout_execution_history (execution_id, attempt, from_state, to_state, event_id, command_id, detail)
       SELECT u.execution_id, u.attempt, u.from_state, u.to_state, u.event_id, u.command_id, u.detail::jsonb
         FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[])
              AS u(execution_id, attempt, from_state, to_state, event_id, command_id, detail)
       ON CONFLICT (event_id) DO NOTHING
       RETURNING event_id`,
      [
        entries.map((e) => e.executionId),
        entries.map((e) => e.attempt),
        entries.map((e) => e.from),
        entries.map((e) => e.to),
        entries.map((e) => e.eventId ?? null),
        entries.map((e) => e.commandId ?? null),
        entries.map((e) => JSON.stringify(e.detail)),
      ],
    )) as { event_id: string | null }[];
    return new Set(rows.flatMap((row) => (row.event_id ? [row.event_id] : [])));
  }

  /** Queue order (wave, order key), keyset-paged; one row more than `limit` says there is a next page. */
  async page(
    manager: EntityManager,
    rolloutId: string,
    filter: { state?: ExecutionState; wave?: number },
    limit: number,
    after?: { wave: number; order: number },
  ): Promise<ExecutionRow[]> {
    const params: unknown[] = [rolloutId, limit + 1];
    let where = 'rollout_id = $1';
    if (filter.state) {
      params.push(filter.state);
      where += ` AND state = $${params.length}`;
    }
    if (filter.wave !== undefined) {
      params.push(filter.wave);
      where += ` AND wave_index = $${params.length}`;
    }
    if (after) {
      params.push(after.wave, after.order);
      where += ` AND (wave_index, order_key) > ($${params.length - 1}, $${params.length})`;
    }
    return (await manager.query(
      `SELECT * FROM rollout_executions WHERE ${where} ORDER BY wave_index, order_key LIMIT $2`,
      params,
    )) as ExecutionRow[];
  }

  async ofDevice(manager: EntityManager, rolloutId: string, deviceId: string): Promise<ExecutionRow | undefined> {
    const rows = (await manager.query(`SELECT * FROM rollout_executions WHERE rollout_id = $1 AND device_id = $2`, [
      rolloutId,
      deviceId,
    ])) as ExecutionRow[];
    return rows[0];
  }

  /** The devices a rollout confirmed, with the snapshot each came from (a remote rollback's way back). */
  async confirmedDevices(
    manager: EntityManager,
    rolloutId: string,
  ): Promise<Array<{ device_id: string; from_snapshot: string | null }>> {
    return (await manager.query(
      `SELECT device_id, from_snapshot FROM rollout_executions WHERE rollout_id = $1 AND state = $2 ORDER BY device_id`,
      [rolloutId, ExecutionState.Confirmed],
    )) as Array<{ device_id: string; from_snapshot: string | null }>;
  }

  async history(manager: EntityManager, executionId: string): Promise<HistoryRow[]> {
    return (await manager.query(
      `SELECT at, attempt, from_state, to_state, event_id, command_id, detail FROM rollout_execution_history WHERE execution_id = $1 ORDER BY id`,
      [executionId],
    )) as HistoryRow[];
  }

  /** Executions per state, of the whole rollout or of one wave. */
  async countStates(manager: EntityManager, rolloutId: string, waveIndex?: number): Promise<StateCounts> {
    const rows = (await manager.query(
      `SELECT state, count(*)::int AS n FROM rollout_executions WHERE rollout_id = $1 AND ($2::int IS NULL OR wave_index = $2) GROUP BY state`,
      [rolloutId, waveIndex ?? null],
    )) as { state: ExecutionState; n: number }[];
    return Object.fromEntries(rows.map((row) => [row.state, row.n]));
  }

  async countByWaveAndState(
    manager: EntityManager,
    rolloutId: string,
  ): Promise<{ wave_index: number; state: ExecutionState; n: number }[]> {
    return (await manager.query(
      `SELECT wave_index, state, count(*)::int AS n FROM rollout_executions WHERE rollout_id = $1 GROUP BY wave_index, state`,
      [rolloutId],
    )) as { wave_index: number; state: ExecutionState; n: number }[];
  }

  /** Executions of waves before `waveIndex` still queued or in flight (a retry in an earlier wave). */
  async countUnfinishedBefore(manager: EntityManager, rolloutId: string, waveIndex: number): Promise<number> {
    const [{ unfinished }] = (await manager.query(
      `SELECT count(*)::int AS unfinished FROM rollout_executions WHERE rollout_id = $1 AND wave_index < $2 AND state = ANY ($3::text[])`,
      [rolloutId, waveIndex, [ExecutionState.Queued, ...IN_FLIGHT_STATES]],
    )) as { unfinished: number }[];
    return unfinished;
  }

  /**
   * Executions not dispatched yet become canceled, set-based, each with its history row (the same data
   * change: no caller wants one without the other). @returns how many
   */
  async cancelQueued(manager: EntityManager, rolloutId: string, reason: string): Promise<number> {
    const rows = await returningRows<{ id: string; attempt: number }>(
      manager,
      `UPDATE rollout_executions SET state = $2, failure_reason = $3, finished_at = now(), updated_at = now()
        WHERE rollout_id = $1 AND state = $4 RETURNING id, attempt`,
      [rolloutId, ExecutionState.Canceled, reason, ExecutionState.Queued],
    );
    await this.recordHistory(
      manager,
      rows.map((r) => ({
        executionId: r.id,
        attempt: r.attempt,
        from: ExecutionState.Queued,
        to: ExecutionState.Canceled,
        detail: { reason },
      })),
    );
    return rows.length;
  }

  /** Executions in flight become canceled; each row says the state it left. */
  async cancelInFlight(manager: EntityManager, rolloutId: string, reason: string): Promise<ChangedExecution[]> {
    return returningRows<ChangedExecution>(
      manager,
      `WITH flying AS (
         SELECT x.id, x.state FROM rollout_executions x
          WHERE x.rollout_id = $1 AND x.state = ANY ($2::text[])
          FOR UPDATE
       )
       UPDATE rollout_executions x
          SET state = $3, failure_reason = $4, finished_at = now(), updated_at = now()
         FROM flying
        WHERE x.id = flying.id
       RETURNING x.id, x.attempt, x.device_id, x.rollout_id, flying.state AS from_state, x.command_id, x.failure_reason`,
      [rolloutId, IN_FLIGHT_STATES, ExecutionState.Canceled, reason],
    );
  }

  /** In-flight executions of every rollout past their deadline become timed-out, skipping rows locked elsewhere. */
  async expireDeadlines(manager: EntityManager): Promise<ChangedExecution[]> {
    return returningRows<ChangedExecution>(
      manager,
      `WITH due AS (
         SELECT id, state FROM rollout_executions
          WHERE state = ANY ($1::text[]) AND deadline_at < now()
          FOR UPDATE SKIP LOCKED
       )
       UPDATE rollout_executions x
          SET state = $2, finished_at = now(), updated_at = now(),
              failure_reason = 'no confirmation within the wave timeout (last state: ' || due.state || ')'
         FROM due WHERE x.id = due.id
       RETURNING x.id, x.rollout_id, x.device_id, x.attempt, due.state AS from_state, x.command_id, x.failure_reason`,
      [IN_FLIGHT_STATES, ExecutionState.TimedOut],
    );
  }

  /** Failed, rejected, rolled-back and timed-out executions are queued again for their next attempt. */
  async requeueFailed(
    manager: EntityManager,
    rolloutId: string,
  ): Promise<{ id: string; attempt: number; device_id: string }[]> {
    return returningRows<{ id: string; attempt: number; device_id: string }>(
      manager,
      `UPDATE rollout_executions
          SET state = $2, attempt = attempt + 1, command_id = NULL, command_type = NULL, artifact_id = NULL, artifact_file = NULL,
              artifact_kind = NULL, artifact_bytes = NULL, failure_reason = NULL, dispatched_at = NULL, deadline_at = NULL,
              finished_at = NULL, updated_at = now()
        WHERE rollout_id = $1 AND state = ANY ($3::text[])
        RETURNING id, attempt, device_id`,
      [rolloutId, ExecutionState.Queued, FAILURE_STATES],
    );
  }

  /** Confirmed executions no revert was tried for yet, locked, with their device's status (null: gone). */
  async lockRevertCandidates(
    manager: EntityManager,
    rolloutId: string,
  ): Promise<
    {
      id: string;
      device_id: string;
      attempt: number;
      from_snapshot: string | null;
      device_status: DeviceStatus | null;
    }[]
  > {
    const device = this.devices.stateJoin('x.device_id');
    return (await manager.query(
      `SELECT x.id, x.device_id, x.attempt, x.from_snapshot, ${device.status} AS device_status
         FROM rollout_executions x ${device.join}
        WHERE x.rollout_id = $1 AND x.state = $2 AND x.revert_state IS NULL
        FOR UPDATE OF x`,
      [rolloutId, ExecutionState.Confirmed],
    )) as {
      id: string;
      device_id: string;
      attempt: number;
      from_snapshot: string | null;
      device_status: DeviceStatus | null;
    }[];
  }

  /** The revert's command (null: none could be sent) and the revert's state. */
  async setRevert(
    manager: EntityManager,
    executionId: string,
    commandId: string | null,
    state: ExecutionState,
  ): Promise<void> {
    await manager.query(
      `UPDATE rollout_executions SET revert_command_id = $2, revert_state = $3, updated_at = now() WHERE id = $1`,
      [executionId, commandId, state],
    );
  }

  async setRevertState(manager: EntityManager, executionId: string, state: ExecutionState): Promise<void> {
    await manager.query(`UPDATE rollout_executions SET revert_state = $2, updated_at = now() WHERE id = $1`, [
      executionId,
      state,
    ]);
  }

  /**
   * Each execution's final state of an event batch in one UPDATE (a 10k-device wave reports tens of
   * thousands of events): failure reason and target snapshot are kept unless the batch brings one.
   */
  async applyEventStates(
    manager: EntityManager,
    rows: Array<{
      id: string;
      state: ExecutionState;
      reason: string | null;
      finished: boolean;
      snapshot: string | null;
    }>,
  ): Promise<void> {
    if (rows.length === 0) return;
    await manager.query(
      `UPDATE rollout_executions x
          SET state = u.state, failure_reason = coalesce(u.reason, x.failure_reason),
              finished_at = CASE WHEN u.finished THEN now() ELSE x.finished_at END,
              target_snapshot = coalesce(x.target_snapshot, u.snapshot), updated_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::boolean[], $5::text[]) AS u(id, state, reason, finished, snapshot)
        WHERE x.id = u.id`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.state),
        rows.map((r) => r.reason),
        rows.map((r) => r.finished),
        rows.map((r) => r.snapshot),
      ],
    );
  }
}
