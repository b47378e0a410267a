import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { JobEventType } from '@cowroot/protocol';
import { DataSource, EntityManager } from 'typeorm';
import { AuditEntryInput, AuditService } from '../audit/audit.service';
import { MetricsService } from '../metrics/metrics.service';
import { DeviceFeed, FeedJobEvent } from '../devices/device-feed';
import { deviceActor } from '../auth/actor';
import { ExecutionState, isFinished, nextExecutionState } from './execution-state';
import { ExecutionsRepository } from './executions.repository';
import { JobEventTargetsRepository } from './job-event-targets.repository';

interface EventRow extends FeedJobEvent {
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
 * Follows the devices feature's job event feed (DeviceFeed: one event per eventId, so QoS 1 redeliveries
 * are already gone) by its arrival sequence, and moves the rollout executions, reverts and remote
 * rollbacks whose commands the events are about. Polling the feed instead of an in-process
 * callback keeps working after a restart and on whichever replica is the engine leader: the cursor is
 * in PostgreSQL and advances in the transaction that applies the events.
 */
@Injectable()
export class JobEventFollower {
  private readonly outcomes;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly devices: DeviceFeed,
    private readonly targets: JobEventTargetsRepository,
    private readonly executions: ExecutionsRepository,
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
      const cursor = await this.targets.lockCursor(manager);
      const ours = this.targets.engineCommands;
      const recent = (await this.devices.jobEventsAfter(
        manager,
        {
          afterSeq: cursor - BigInt(LOOKBACK.rows),
          throughSeq: cursor,
          receivedWithinSeconds: LOOKBACK.seconds,
          limit: BATCH,
        },
        ours,
      )) as EventRow[];
      const fresh = (await this.devices.jobEventsAfter(
        manager,
        { afterSeq: cursor, limit: BATCH },
        ours,
      )) as EventRow[];
      const events = [...recent, ...fresh];
      const top = await this.devices.lastJobEventSeq(manager, cursor);
      const newCursor = fresh.length === BATCH ? BigInt(fresh[fresh.length - 1].seq) : top;
      const transitions = await this.transitions(manager, events);
      await this.apply(manager, transitions);
      if (newCursor > cursor) await this.targets.setCursor(manager, newCursor);
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
      const events = (await this.devices.settledJobEventsOf(
        manager,
        this.targets.staleCommands(STALE_SECONDS),
        LOOKBACK.seconds,
        BATCH,
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
    const executions = await this.targets.lockExecutionsOf(manager, commandIds);
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
    const rollbacks = await this.targets.lockRollbackDevicesOf(manager, commandIds);
    for (const r of rollbacks)
      targets.set(r.commandId, { table: 'rollback', rollbackId: r.rollbackId, deviceId: r.deviceId, state: r.state });

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
          await this.executions.setRevertState(manager, t.target.id, t.to);
          await this.executions.recordHistory(manager, [
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
          await this.targets.setRollbackDeviceState(manager, t.target, t.to, reason);
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
    const applied = await this.executions.recordHistory(
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
    await this.executions.applyEventStates(
      manager,
      [...final.entries()].map(([id, f]) => ({ id, ...f })),
    );
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
