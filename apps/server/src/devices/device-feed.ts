import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import type { SnapshotInfo } from '@cowroot/protocol';
import { DeviceStatus } from './device.entity';
import { DeviceSelector, SqlFragment, selectorCondition } from './device-selection';

/** A job event as the feed hands it out (device_job_events: one row per eventId, in arrival order). */
export interface FeedJobEvent {
  /** arrival sequence; bigint, so text */
  seq: string;
  event_id: string;
  command_id: string;
  device_id: string;
  type: string;
  payload: Record<string, unknown>;
}

/**
 * The caller's condition on a command id column (`e.command_id`, `c.id`): which commands it follows. SQL
 * without parameters of its own, over the caller's tables; the feed places it in its WHERE.
 */
export type CommandFilter = (commandIdColumn: string) => string;

/** Where the targets of a selector come from, for a caller's set-based INSERT … SELECT. */
export interface TargetRelation {
  /** `FROM` item: the devices table under the alias */
  from: string;
  /** the selector's condition, and "not booted into the release yet" */
  where: string;
  /** the device id column under the alias */
  id: string;
  /** the condition's parameters, placed from the `firstParam` the caller gave */
  params: unknown[];
}

/**
 * A device's state columns joined to a caller's rows by device id (LEFT JOIN: a row may outlive its
 * device). `bootedSnapshot`, `snapshots` and `deltaFormats` come back under their column names (booted_snapshot,
 * snapshots, delta_formats).
 */
export interface DeviceStateJoin {
  join: string;
  status: string;
  bootedSnapshot: string;
  snapshots: string;
  deltaFormats: string;
}

const FEED_ALIAS = 'd';
const EVENT_COLUMNS = `e.seq::text AS seq, e.event_id, e.command_id, e.device_id, e.type, e.payload`;
const positiveInt = (value: number, what: string): number => {
  // these numbers are written into the SQL text (an interval, a LIMIT): integers only
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${what} must be a positive integer, got ${value}`);
  return value;
};

/**
 * What other features (rollouts) read of the devices: which devices a selector targets, their state for
 * dispatch, their job events by arrival order, their unacknowledged commands. The one place outside the
 * devices' own services that names the devices' tables. Every method runs in the caller's transaction
 * (`manager`); the fragment methods exist where the caller's statement is set-based over thousands of
 * devices (planning, dispatch: docs/rollouts.md, bench:rollout) and a second query per batch would change
 * its cost, so the devices' SQL is handed over as a piece of the caller's one statement.
 */
@Injectable()
export class DeviceFeed {
  /** How many active devices the selector targets that did not boot `releaseRef` yet. */
  async countTargets(manager: EntityManager, selector: DeviceSelector, releaseRef: string): Promise<number> {
    const condition = selectorCondition(selector, FEED_ALIAS, 2);
    const [{ total }] = (await manager.query(
      `SELECT count(*)::int AS total FROM devices d WHERE ${condition.sql} AND d.booted_release IS DISTINCT FROM $1`,
      [releaseRef, ...condition.params],
    )) as { total: number }[];
    return total;
  }

  /**
   * The relation countTargets() counts, for the caller's statement: `releaseParam` is the caller's
   * placeholder holding `name@version`, the selector's parameters start at `$firstParam`.
   */
  targets(selector: DeviceSelector, releaseParam: string, firstParam: number): TargetRelation {
    const condition = selectorCondition(selector, FEED_ALIAS, firstParam);
    return {
      from: `devices ${FEED_ALIAS}`,
      where: `${condition.sql} AND ${FEED_ALIAS}.booted_release IS DISTINCT FROM ${releaseParam}`,
      id: `${FEED_ALIAS}.id`,
      params: condition.params,
    };
  }

  /** A selector's preview: how many it targets, how many of those already booted `releaseRef`, the first ten ids. */
  async preview(
    manager: EntityManager,
    selector: DeviceSelector,
    releaseRef: string | null,
  ): Promise<{ targeted: number; already: number; sample: string[] }> {
    const condition = selectorCondition(selector, FEED_ALIAS, 2);
    const [counts] = (await manager.query(
      `SELECT count(*)::int AS targeted, count(*) FILTER (WHERE d.booted_release = $1)::int AS already
         FROM devices d WHERE ${condition.sql}`,
      [releaseRef, ...condition.params],
    )) as Array<{ targeted: number; already: number }>;
    const sampleCondition = selectorCondition(selector, FEED_ALIAS, 1);
    const sample = (await manager.query(
      `SELECT d.id FROM devices d WHERE ${sampleCondition.sql} ORDER BY d.id LIMIT 10`,
      sampleCondition.params,
    )) as Array<{ id: string }>;
    return { targeted: counts.targeted, already: counts.already, sample: sample.map((row) => row.id) };
  }

  /** The state columns of the device `deviceIdColumn` names, for the caller's SELECT. */
  stateJoin(deviceIdColumn: string): DeviceStateJoin {
    return {
      join: `LEFT JOIN devices ${FEED_ALIAS} ON ${FEED_ALIAS}.id = ${deviceIdColumn}`,
      status: `${FEED_ALIAS}.status`,
      bootedSnapshot: `${FEED_ALIAS}.booted_snapshot`,
      snapshots: `${FEED_ALIAS}.snapshots`,
      deltaFormats: `${FEED_ALIAS}.delta_formats`,
    };
  }

  /** Active devices by id or by tag, with what they boot and hold (a remote rollback's candidates), by id. */
  async activeSnapshots(
    manager: EntityManager,
    which: { ids: string[] } | { tag: string },
  ): Promise<Array<{ id: string; booted_snapshot: string | null; snapshots: SnapshotInfo[] | null }>> {
    const [condition, param] =
      'ids' in which ? ['id = ANY ($1::text[])', which.ids] : ['tags @> ARRAY[$1]::text[]', which.tag];
    return (await manager.query(
      `SELECT id, booted_snapshot, snapshots FROM devices WHERE ${condition} AND status = $2 ORDER BY id`,
      [param, DeviceStatus.Active],
    )) as Array<{ id: string; booted_snapshot: string | null; snapshots: SnapshotInfo[] | null }>;
  }

  /**
   * Which of `deviceIds` are active, locked FOR SHARE (as CommandDispatcher.recordMany does): a
   * decommission that has not committed yet waits for the caller's commands.
   */
  async lockActive(manager: EntityManager, deviceIds: string[]): Promise<Set<string>> {
    const rows = (await manager.query(
      `SELECT id FROM devices WHERE id = ANY ($1::text[]) AND status = $2 ORDER BY id FOR SHARE`,
      [deviceIds, DeviceStatus.Active],
    )) as { id: string }[];
    return new Set(rows.map((row) => row.id));
  }

  /**
   * Job events that arrived after `afterSeq` (at most `throughSeq`, received in the last
   * `receivedWithinSeconds` when given), for the commands `commands` accepts, in arrival order.
   */
  async jobEventsAfter(
    manager: EntityManager,
    window: { afterSeq: bigint; throughSeq?: bigint; receivedWithinSeconds?: number; limit: number },
    commands: CommandFilter,
  ): Promise<FeedJobEvent[]> {
    const params: unknown[] = [window.afterSeq.toString()];
    const where = [`e.seq > $1::bigint`];
    if (window.throughSeq !== undefined) {
      params.push(window.throughSeq.toString());
      where.push(`e.seq <= $${params.length}::bigint`);
    }
    if (window.receivedWithinSeconds !== undefined)
      where.push(
        `e.received_at > now() - interval '${positiveInt(window.receivedWithinSeconds, 'received within')} seconds'`,
      );
    where.push(commands('e.command_id'));
    return (await manager.query(
      `SELECT ${EVENT_COLUMNS} FROM device_job_events e WHERE ${where.join(' AND ')} ORDER BY e.seq LIMIT ${positiveInt(window.limit, 'limit')}`,
      params,
    )) as FeedJobEvent[];
  }

  /** The newest arrival sequence above `afterSeq`, or 0 when nothing arrived since. */
  async lastJobEventSeq(manager: EntityManager, afterSeq: bigint): Promise<bigint> {
    const [{ top }] = (await manager.query(
      `SELECT coalesce(max(seq), 0)::text AS top FROM device_job_events WHERE seq > $1`,
      [afterSeq.toString()],
    )) as { top: string }[];
    return BigInt(top);
  }

  /**
   * Every outcome event (no progress) of the commands `commandIds` lists that arrived more than
   * `receivedBeforeSeconds` ago, in arrival order. `commandIds` is the caller's subquery; its parameters
   * are the statement's.
   */
  async settledJobEventsOf(
    manager: EntityManager,
    commandIds: SqlFragment,
    receivedBeforeSeconds: number,
    limit: number,
  ): Promise<FeedJobEvent[]> {
    return (await manager.query(
      `SELECT ${EVENT_COLUMNS}
         FROM device_job_events e
        WHERE e.type <> 'progress'
          AND e.received_at < now() - interval '${positiveInt(receivedBeforeSeconds, 'received before')} seconds'
          AND e.command_id IN (${commandIds.sql})
        ORDER BY e.seq
        LIMIT ${positiveInt(limit, 'limit')}`,
      commandIds.params,
    )) as FeedJobEvent[];
  }

  /** Devices with a command `commands` accepts that no device acknowledged yet (queued or sent). */
  async devicesWithUnacknowledged(manager: EntityManager, commands: CommandFilter): Promise<string[]> {
    const rows = (await manager.query(
      `SELECT DISTINCT c.device_id FROM device_commands c WHERE c.status IN ('queued', 'sent') AND ${commands('c.id')}`,
    )) as { device_id: string }[];
    return rows.map((row) => row.device_id);
  }
}
