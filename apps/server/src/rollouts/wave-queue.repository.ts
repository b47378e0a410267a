import { Injectable } from '@nestjs/common';
import { SnapshotInfo } from '@cowroot/protocol';
import { EntityManager } from 'typeorm';
import { DeviceFeed } from '../devices/device-feed';
import { DeviceStatus } from '../devices/device.entity';
import { DeviceSelector } from './device-selector';
import { ExecutionState, IN_FLIGHT_STATES } from './execution-state';

/** A queued execution as the dispatcher plans it, with its wave's timeout and its device's state. */
export interface QueuedDevice {
  id: string;
  device_id: string;
  wave_index: number;
  order_key: number;
  attempt: number;
  timeout_seconds: number;
  device_status: DeviceStatus | null;
  booted_snapshot: string | null;
  snapshots: SnapshotInfo[] | null;
  /** what the device's agent reported it reads; null when it never did (the picker's conservative case) */
  delta_formats: number[] | null;
}

/** Where a batch stopped in the rollout's queue order. */
export interface QueuePosition {
  waveIndex: number;
  orderKey: number;
}

/** One execution's dispatch, as markDispatched() stores it. */
export interface DispatchRecord {
  executionId: string;
  commandId: string;
  commandType: string;
  artifact: { id: string; file: string; kind: string } | null;
  bytes: number;
  fromSnapshot: string | null;
  targetSnapshot: string | null;
  timeoutSeconds: number;
}

/**
 * The rollout's queue of executions: the planner fills it (set-based, one INSERT … SELECT over the targeted
 * devices, no query per device) and the dispatcher drains it in batches. These statements were tuned for
 * linear cost with bench:rollout: their shapes are kept as they were measured. The devices' part of each
 * statement comes from the devices feature (DeviceFeed), which owns that table.
 */
@Injectable()
export class WaveQueueRepository {
  constructor(private readonly devices: DeviceFeed) {}

  /** How many devices the selector targets now that are not booted into `releaseRef`. */
  countTargets(manager: EntityManager, selector: DeviceSelector, releaseRef: string): Promise<number> {
    return this.devices.countTargets(manager, selector, releaseRef);
  }

  /**
   * Queues the first `last` targeted devices in `order` (random or by id) into waves by cumulative
   * `bounds`, in one statement.
   */
  async planAll(
    manager: EntityManager,
    input: { rolloutId: string; selector: DeviceSelector; releaseRef: string; randomize: boolean },
    bounds: number[],
    last: number,
  ): Promise<void> {
    const targets = this.devices.targets(input.selector, '$1', 2);
    const order = input.randomize ? 'random()' : targets.id;
    const base = 2 + targets.params.length;
    await manager.query(
      `WITH ranked AS (
         SELECT ${targets.id}, row_number() OVER (ORDER BY ${order})::int AS position
           FROM ${targets.from}
          WHERE ${targets.where}
       )
       INSERT INTO rollout_executions (id, rollout_id, wave_index, device_id, order_key, state)
       SELECT gen_random_uuid(), $${base},
              (SELECT min(b.i)::int - 1 FROM unnest($${base + 1}::int[]) WITH ORDINALITY AS b(bound, i) WHERE r.position <= b.bound),
              r.id, r.position, '${ExecutionState.Queued}'
         FROM ranked r
        WHERE r.position <= $${base + 2}`,
      [input.releaseRef, ...targets.params, input.rolloutId, bounds, last],
    );
  }

  /**
   * Continuous mode: targeted devices not in the rollout yet join wave `lastWave`, after everyone queued
   * before them. @returns the executions created
   */
  async joinNewDevices(
    manager: EntityManager,
    input: { rolloutId: string; selector: DeviceSelector; releaseRef: string; randomize: boolean; lastWave: number },
  ): Promise<{ id: string; device_id: string }[]> {
    const targets = this.devices.targets(input.selector, '$1', 3);
    return (await manager.query(
      `WITH newcomers AS (
         SELECT ${targets.id}, row_number() OVER (ORDER BY ${input.randomize ? 'random()' : targets.id})::int AS position
           FROM ${targets.from}
          WHERE ${targets.where}
            AND NOT EXISTS (SELECT 1 FROM rollout_executions x WHERE x.rollout_id = $2 AND x.device_id = ${targets.id})
       ), base AS (
         SELECT coalesce(max(order_key), 0) AS top FROM rollout_executions WHERE rollout_id = $2
       )
       INSERT INTO rollout_executions (id, rollout_id, wave_index, device_id, order_key, state)
       SELECT gen_random_uuid(), $2, $${3 + targets.params.length}, n.id, base.top + n.position, '${ExecutionState.Queued}'
         FROM newcomers n CROSS JOIN base
       ON CONFLICT (rollout_id, device_id) DO NOTHING
       RETURNING id, device_id`,
      [input.releaseRef, input.rolloutId, ...targets.params, input.lastWave],
    )) as { id: string; device_id: string }[];
  }

  /** History rows for executions just queued (all of the rollout's, or `executionIds`), set-based. */
  async recordQueued(manager: EntityManager, rolloutId: string, executionIds: string[] | null): Promise<void> {
    await manager.query(
      `INSERT INTO rollout_execution_history (execution_id, attempt, from_state, to_state, detail)
       SELECT x.id, x.attempt, NULL, x.state, jsonb_build_object('wave', x.wave_index, 'reason', $3::text)
         FROM rollout_executions x
        WHERE x.rollout_id = $1 AND ($2::uuid[] IS NULL OR x.id = ANY ($2::uuid[]))`,
      [rolloutId, executionIds, executionIds ? 'joined (continuous mode)' : 'planned'],
    );
  }

  /**
   * Locks the next `size` queued executions of waves up to `currentWave`, after `after` in queue order,
   * skipping devices busy in another rollout (one rollout command per device at a time).
   */
  async lockNextQueued(
    manager: EntityManager,
    rolloutId: string,
    currentWave: number,
    size: number,
    after: QueuePosition,
  ): Promise<QueuedDevice[]> {
    const device = this.devices.stateJoin('x.device_id');
    return (await manager.query(
      `SELECT x.id, x.device_id, x.wave_index, x.order_key, x.attempt, w.timeout_seconds,
              ${device.status} AS device_status, ${device.bootedSnapshot}, ${device.snapshots},
              ${device.deltaFormats}
         FROM rollout_executions x
         JOIN rollout_waves w ON w.rollout_id = x.rollout_id AND w.index = x.wave_index
         ${device.join}
        WHERE x.rollout_id = $1 AND x.state = $2 AND x.wave_index <= $3
          AND (x.wave_index, x.order_key) > ($6::int, $7::int)
          -- one rollout command per device at a time: a device busy in another rollout waits its turn
          AND NOT EXISTS (
            SELECT 1 FROM rollout_executions o
             WHERE o.device_id = x.device_id AND o.rollout_id <> x.rollout_id AND o.state = ANY ($5::text[]))
        ORDER BY x.wave_index, x.order_key
        LIMIT $4
        FOR UPDATE OF x`,
      [rolloutId, ExecutionState.Queued, currentWave, size, IN_FLIGHT_STATES, after.waveIndex, after.orderKey],
    )) as QueuedDevice[];
  }

  /** Notified, with command, artifact, snapshots and deadline, in one UPDATE for the batch. */
  async markDispatched(manager: EntityManager, dispatched: DispatchRecord[]): Promise<void> {
    if (dispatched.length === 0) return;
    const column = <T>(pick: (d: DispatchRecord) => T) => dispatched.map(pick);
    await manager.query(
      `UPDATE rollout_executions x
          SET state = $1, command_id = u.command_id, command_type = u.command_type, artifact_id = u.artifact_id,
              artifact_file = u.artifact_file, artifact_kind = u.artifact_kind, artifact_bytes = u.bytes,
              from_snapshot = u.from_snapshot, target_snapshot = u.target_snapshot, failure_reason = NULL,
              dispatched_at = now(), deadline_at = now() + make_interval(secs => u.timeout_seconds),
              finished_at = NULL, updated_at = now()
         FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[], $11::int[])
              AS u(id, command_id, command_type, artifact_id, artifact_file, artifact_kind, bytes, from_snapshot, target_snapshot, timeout_seconds)
        WHERE x.id = u.id`,
      [
        ExecutionState.Notified,
        column((d) => d.executionId),
        column((d) => d.commandId),
        column((d) => d.commandType),
        column((d) => d.artifact?.id ?? null),
        column((d) => d.artifact?.file ?? null),
        column((d) => d.artifact?.kind ?? null),
        column((d) => d.bytes),
        column((d) => d.fromSnapshot),
        column((d) => d.targetSnapshot),
        column((d) => d.timeoutSeconds),
      ],
    );
  }

  /** An execution that finished without a command (decommissioned device, no applicable artifact). */
  async markFinished(
    manager: EntityManager,
    executionId: string,
    state: ExecutionState,
    reason: string,
  ): Promise<void> {
    await manager.query(
      `UPDATE rollout_executions SET state = $2, failure_reason = $3, finished_at = now(), updated_at = now() WHERE id = $1`,
      [executionId, state, reason],
    );
  }

  /** Executions of the rollout dispatched in the last 60 s (the dispatch rate's window). */
  async countDispatchedLastMinute(manager: EntityManager, rolloutId: string): Promise<number> {
    const [{ recent }] = (await manager.query(
      `SELECT count(*)::int AS recent FROM rollout_executions WHERE rollout_id = $1 AND dispatched_at > now() - interval '60 seconds'`,
      [rolloutId],
    )) as { recent: number }[];
    return recent;
  }
}
