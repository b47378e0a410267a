import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { JobEventType } from '@cowroot/protocol';
import { DataSource, EntityManager } from 'typeorm';
import { AuditEntryInput, AuditService } from '../audit/audit.service';
import { MetricsService } from '../metrics/metrics.service';
import { deviceActor } from '../auth/actor';
import { ExecutionState, IN_FLIGHT_STATES, isFinished, nextExecutionState } from './execution-state';
import { recordHistory } from './execution-history';

interface EventRow {
  seq: string;
  event_id: string;
  command_id: string;
  device_id: string;
  type: string;
  payload: Record<string, unknown> & {
    rollback?: { by?: string; check?: string; outputTail?: string; restoredSnapshot?: string };
    error?: { code: string; message: string };
    snapshot?: string;
    bytesDownloaded?: number;
  };
}

/** Which of the engine's tables a command belongs to. */
type Target =
  | { table: 'execution'; id: string; rolloutId: string; attempt: number; state: ExecutionState }
  | { table: 'revert'; id: string; rolloutId: string; attempt: number; state: ExecutionState }
  | { table: 'rollback'; rollbackId: string; deviceId: string; state: ExecutionState };

interface Transition {
  target: Target;
  from: ExecutionState;
  to: ExecutionState;
  event: EventRow;
}

/** Events read per pass. */
const BATCH = 5000;
/**
 * Sequence values are taken when a row is inserted but become visible at commit, so an event of a slower
 * transaction can appear below the cursor. Events this recent are read again; applying an event twice is
 * a no-op because states only move forward, so re-reading costs a query, never a double count.
 */
const LOOKBACK = { seconds: 5, rows: 50_000 };
/** In-flight work that has not moved for this long is checked against its events again (reconcileOnce). */
const STALE_SECONDS = 10;

/**
 * Follows the devices feature's job event table (device_job_events: one row per eventId, so QoS 1
 * redeliveries are already gone) by its arrival sequence, and moves the rollout executions, reverts and
 * remote rollbacks whose commands the events are about. Polling the table instead of an in-process
 * callback keeps working after a restart and on whichever replica is the engine leader: the cursor is
 * in PostgreSQL and advances in the transaction that applies the events.
 */
@Injectable()
export class JobEventFollower {
  private readonly outcomes;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    metrics: MetricsService,
  ) {
    this.outcomes = metrics.counter(
      'cowroot_rollout_execution_outcomes_total',
      'Device outcomes in rollouts, by execution state',
      ['state'],
    );
  }

  /** @returns the number of state changes applied */
  async followOnce(): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const [{ event_seq: cursorText }] = (await manager.query(
        `SELECT event_seq::text FROM rollout_engine_cursor WHERE id = 1 FOR UPDATE`,
      )) as { event_seq: string }[];
      const cursor = BigInt(cursorText);
      const ours = `(EXISTS (SELECT 1 FROM rollout_executions x WHERE x.command_id = e.command_id)
                     OR EXISTS (SELECT 1 FROM rollout_executions x WHERE x.revert_command_id = e.command_id)
                     OR EXISTS (SELECT 1 FROM rollback_devices r WHERE r.command_id = e.command_id))`;
      const columns = `e.seq::text AS seq, e.event_id, e.command_id, e.device_id, e.type, e.payload`;
      const recent = (await manager.query(
        `SELECT ${columns} FROM device_job_events e
          WHERE e.seq > $1::bigint - ${LOOKBACK.rows} AND e.seq <= $1::bigint
            AND e.received_at > now() - interval '${LOOKBACK.seconds} seconds' AND ${ours}
          ORDER BY e.seq LIMIT ${BATCH}`,
        [cursor.toString()],
      )) as EventRow[];
      const fresh = (await manager.query(
        `SELECT ${columns} FROM device_job_events e WHERE e.seq > $1::bigint AND ${ours} ORDER BY e.seq LIMIT ${BATCH}`,
        [cursor.toString()],
      )) as EventRow[];
      const events = [...recent, ...fresh];
      const [{ top }] = (await manager.query(
        `SELECT coalesce(max(seq), 0)::text AS top FROM device_job_events WHERE seq > $1`,
        [cursor.toString()],
      )) as { top: string }[];
      const newCursor = fresh.length === BATCH ? BigInt(fresh[fresh.length - 1].seq) : BigInt(top);
      const transitions = await this.transitions(manager, events);
      await this.apply(manager, transitions);
      if (newCursor > cursor)
        await manager.query(`UPDATE rollout_engine_cursor SET event_seq = $1 WHERE id = 1`, [newCursor.toString()]);
      return transitions.length;
    });
  }

  /**
   * Safety net for the cursor: an event whose transaction committed more than the lookback after it was
   * received would be behind the cursor for good. Commands of executions (and reverts, rollbacks) that
   * are in flight and have not moved for a while get all their events read again by command id;
   * re-applying is a no-op, so this only ever catches up. The engine runs it every few seconds.
   * @returns the number of state changes applied
   */
  async reconcileOnce(): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const events = (await manager.query(
        `SELECT e.seq::text AS seq, e.event_id, e.command_id, e.device_id, e.type, e.payload
           FROM device_job_events e
          WHERE e.type <> 'progress'
            AND e.received_at < now() - interval '${LOOKBACK.seconds} seconds'
            AND e.command_id IN (
              SELECT command_id FROM rollout_executions
               WHERE state = ANY ($1::text[]) AND updated_at < now() - interval '${STALE_SECONDS} seconds' AND command_id IS NOT NULL
              UNION ALL
              -- a device outcome still replaces the server's timeout verdict
              SELECT command_id FROM rollout_executions
               WHERE state = $2 AND finished_at > now() - interval '10 minutes' AND updated_at < now() - interval '${STALE_SECONDS} seconds'
              UNION ALL
              SELECT revert_command_id FROM rollout_executions
               WHERE revert_state = ANY ($1::text[]) AND updated_at < now() - interval '${STALE_SECONDS} seconds'
              UNION ALL
              SELECT command_id FROM rollback_devices
               WHERE state = ANY ($1::text[]) AND updated_at < now() - interval '${STALE_SECONDS} seconds' AND command_id IS NOT NULL)
          ORDER BY e.seq
          LIMIT ${BATCH}`,
        [IN_FLIGHT_STATES, ExecutionState.TimedOut],
      )) as EventRow[];
      const transitions = await this.transitions(manager, events);
      await this.apply(manager, transitions);
      return transitions.length;
    });
  }

  /** Folds the events, in arrival order, over the current states: at most one change per target and event. */
  private async transitions(manager: EntityManager, events: EventRow[]): Promise<Transition[]> {
    if (events.length === 0) return [];
    const commandIds = [...new Set(events.map((e) => e.command_id))];
    const targets = new Map<string, Target>();
    const executions = (await manager.query(
      `SELECT id, rollout_id, attempt, state, command_id, revert_command_id, revert_state
         FROM rollout_executions WHERE command_id = ANY ($1::uuid[]) OR revert_command_id = ANY ($1::uuid[])
         FOR UPDATE`,
      [commandIds],
    )) as {
      id: string;
      rollout_id: string;
      attempt: number;
      state: ExecutionState;
      command_id: string | null;
      revert_command_id: string | null;
      revert_state: ExecutionState | null;
    }[];
    for (const x of executions) {
      if (x.command_id && commandIds.includes(x.command_id)) {
        targets.set(x.command_id, {
          table: 'execution',
          id: x.id,
          rolloutId: x.rollout_id,
          attempt: x.attempt,
          state: x.state,
        });
      }
      if (x.revert_command_id && commandIds.includes(x.revert_command_id)) {
        const state = x.revert_state ?? ExecutionState.Notified;
        targets.set(x.revert_command_id, {
          table: 'revert',
          id: x.id,
          rolloutId: x.rollout_id,
          attempt: x.attempt,
          state,
        });
      }
    }
    const rollbacks = (await manager.query(
      `SELECT rollback_id, device_id, command_id, state FROM rollback_devices WHERE command_id = ANY ($1::uuid[]) FOR UPDATE`,
      [commandIds],
    )) as { rollback_id: string; device_id: string; command_id: string; state: ExecutionState }[];
    for (const r of rollbacks)
      targets.set(r.command_id, {
        table: 'rollback',
        rollbackId: r.rollback_id,
        deviceId: r.device_id,
        state: r.state,
      });

    const transitions: Transition[] = [];
    for (const event of events) {
      const target = targets.get(event.command_id);
      if (!target) continue;
      const next = nextExecutionState(target.state, { type: event.type, rollback: event.payload.rollback });
      if (!next) continue;
      transitions.push({ target, from: target.state, to: next, event });
      target.state = next;
    }
    return transitions;
  }

  private async apply(manager: EntityManager, transitions: Transition[]): Promise<void> {
    const audit: AuditEntryInput[] = await this.applyToExecutions(
      manager,
      transitions.filter((t): t is Transition & { target: { table: 'execution' } } => t.target.table === 'execution'),
    );
    for (const t of transitions) {
      const reason = reasonOf(t.event);
      const finished = isFinished(t.to);
      switch (t.target.table) {
        case 'execution':
          break;
        case 'revert':
          await manager.query(`UPDATE rollout_executions SET revert_state = $2, updated_at = now() WHERE id = $1`, [
            t.target.id,
            t.to,
          ]);
          await recordHistory(manager, [
            {
              executionId: t.target.id,
              attempt: t.target.attempt,
              from: ExecutionState.Confirmed,
              to: ExecutionState.Confirmed,
              eventId: t.event.event_id,
              commandId: t.event.command_id,
              detail: { revert: t.to, ...detailOf(t.event) },
            },
          ]);
          if (finished) {
            audit.push({
              actor: deviceActor(t.event.device_id),
              action: `rollout.execution.revert-${t.to}`,
              subjectType: 'device',
              subjectId: t.event.device_id,
              after: {
                rolloutId: t.target.rolloutId,
                executionId: t.target.id,
                revertState: t.to,
                commandId: t.event.command_id,
                ...detailOf(t.event),
              },
              reason: reason ?? undefined,
            });
          }
          break;
        case 'rollback':
          await manager.query(
            `UPDATE rollback_devices SET state = $3, detail = coalesce($4, detail), updated_at = now() WHERE rollback_id = $1 AND device_id = $2`,
            [t.target.rollbackId, t.target.deviceId, t.to, reason],
          );
          if (finished) {
            audit.push({
              actor: deviceActor(t.target.deviceId),
              action: `rollback.device.${t.to}`,
              subjectType: 'device',
              subjectId: t.target.deviceId,
              after: {
                rollbackId: t.target.rollbackId,
                state: t.to,
                commandId: t.event.command_id,
                ...detailOf(t.event),
              },
              reason: reason ?? undefined,
            });
          }
          break;
      }
    }
    await this.audit.recordMany(audit, manager);
  }

  /**
   * Execution transitions with a fixed number of statements (a 10k-device wave reports tens of thousands
   * of events): history rows first, keyed by event id, so an event applied before changes nothing; then
   * each execution's final state of this batch in one UPDATE.
   */
  private async applyToExecutions(
    manager: EntityManager,
    transitions: Array<Transition & { target: { table: 'execution' } }>,
  ): Promise<AuditEntryInput[]> {
    if (transitions.length === 0) return [];
    const applied = await recordHistory(
      manager,
      transitions.map((t) => ({
        executionId: t.target.id,
        attempt: t.target.attempt,
        from: t.from,
        to: t.to,
        eventId: t.event.event_id,
        commandId: t.event.command_id,
        detail: detailOf(t.event),
      })),
    );
    const kept = transitions.filter((t) => applied.has(t.event.event_id));
    const final = new Map<
      string,
      { state: ExecutionState; reason: string | null; finished: boolean; snapshot: string | null }
    >();
    for (const t of kept) {
      const current = final.get(t.target.id) ?? { state: t.to, reason: null, finished: false, snapshot: null };
      current.state = t.to;
      current.reason = reasonOf(t.event) ?? current.reason;
      current.finished = current.finished || isFinished(t.to);
      current.snapshot = current.snapshot ?? t.event.payload.snapshot ?? null;
      final.set(t.target.id, current);
    }
    if (final.size > 0) {
      const rows = [...final.entries()];
      await manager.query(
        `UPDATE rollout_executions x
            SET state = u.state, failure_reason = coalesce(u.reason, x.failure_reason),
                finished_at = CASE WHEN u.finished THEN now() ELSE x.finished_at END,
                target_snapshot = coalesce(x.target_snapshot, u.snapshot), updated_at = now()
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::boolean[], $5::text[]) AS u(id, state, reason, finished, snapshot)
          WHERE x.id = u.id`,
        [
          rows.map(([id]) => id),
          rows.map(([, f]) => f.state),
          rows.map(([, f]) => f.reason),
          rows.map(([, f]) => f.finished),
          rows.map(([, f]) => f.snapshot),
        ],
      );
    }
    for (const t of kept) if (isFinished(t.to)) this.outcomes.inc({ state: t.to });
    return kept
      .filter((t) => isFinished(t.to))
      .map((t) => ({
        actor: deviceActor(t.event.device_id),
        action: `rollout.execution.${t.to}`,
        subjectType: 'device',
        subjectId: t.event.device_id,
        before: { state: t.from },
        after: {
          rolloutId: t.target.rolloutId,
          executionId: t.target.id,
          attempt: t.target.attempt,
          state: t.to,
          commandId: t.event.command_id,
          eventId: t.event.event_id,
          ...detailOf(t.event),
        },
        reason: reasonOf(t.event) ?? undefined,
      }));
  }
}

function reasonOf(event: EventRow): string | null {
  const { error, rollback } = event.payload;
  if (error) return `${error.code}: ${error.message}`;
  if (event.type === JobEventType.RolledBack && rollback) {
    return `rolled back by ${rollback.by}${rollback.check ? ` (check ${rollback.check})` : ''}`;
  }
  return null;
}

/** What the timeline shows about an event: check name and output, snapshot, bytes. */
function detailOf(event: EventRow): Record<string, unknown> {
  const { rollback, error, snapshot, bytesDownloaded } = event.payload;
  const detail: Record<string, unknown> = { event: event.type };
  if (snapshot) detail.snapshot = snapshot;
  if (bytesDownloaded !== undefined) detail.bytesDownloaded = bytesDownloaded;
  if (error) detail.error = error;
  if (rollback) detail.rollback = rollback;
  return detail;
}
