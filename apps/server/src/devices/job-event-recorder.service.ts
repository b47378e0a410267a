import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { JobEventMessage, JobEventType } from '@cowroot/protocol';
import { DataSource, EntityManager, QueryFailedError } from 'typeorm';
import { deviceActor } from '../auth/actor';
import { AuditEntryInput, AuditService } from '../audit/audit.service';
import { CommandStatus, nextCommandStatus } from './command-status';
import { GroupCommit } from './group-commit';

export type JobEventOutcome =
  | { result: 'stored'; status: CommandStatus; changed: boolean }
  | { result: 'duplicate' }
  | { result: 'unknown-command' }
  /** the database refused this event on its own (docs/protocol.md §7.1 UNSTORABLE) */
  | { result: 'unstorable'; detail: string };

interface PendingEvent {
  deviceId: string;
  event: JobEventMessage;
  receivedAt: Date;
}

interface LockedCommand {
  id: string;
  device_id: string;
  status: CommandStatus;
  type: string;
}

/**
 * Two writers that lock several command rows each (this one in id order, a rollout's set-based UPDATE in
 * its scan order) can deadlock; PostgreSQL then aborts one of them, which is worth running again.
 */
const DEADLOCK_RETRIES = 3;
const isDeadlock = (error: unknown) =>
  error instanceof QueryFailedError && (error.driverError as { code?: unknown } | undefined)?.code === '40P01';

/**
 * Stores job events once per eventId (a redelivered QoS 1 publish is dropped by the unique index) and moves
 * each command's status forward; status changes are audited.
 *
 * Group commit (GroupCommit), as for state reports: events that arrive while a transaction runs
 * wait for the next one, so a wave's thousands of `accepted` cost a few transactions of four statements
 * each (lock the commands, insert the events, update the commands, audit) instead of one transaction of
 * five round trips per event. record() resolves only after its transaction committed: the broker sends
 * PUBACK (or NATS gets its ack) after that. One writer at a time keeps a device's events in arrival order.
 *
 * Isolation (docs/protocol.md §7.1): a batch that fails because of what an event contains is split in
 * halves down to the one event the database refuses on its own, which resolves `unstorable`; every other
 * event of the batch is stored. A failure that is not the data's fault fails the batch, and devices resend.
 */
@Injectable()
export class JobEventRecorder {
  private readonly logger = new Logger(JobEventRecorder.name);
  private readonly batches = new GroupCommit<PendingEvent, JobEventOutcome>({
    logger: this.logger,
    noun: 'job event',
    label: (pending) => `deviceId=${pending.deviceId}`,
    write: (batch) => this.writeRetryingDeadlocks(batch),
    refused: (_pending, error) => ({ result: 'unstorable', detail: `the database refused it: ${error.message}` }),
  });

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
  ) {}

  record(deviceId: string, event: JobEventMessage, receivedAt = new Date()): Promise<JobEventOutcome> {
    return this.batches.submit({ deviceId, event, receivedAt });
  }

  /** Resolves when every recorded event has been written (or failed). */
  drain(): Promise<void> {
    return this.batches.drain();
  }

  private async writeRetryingDeadlocks(batch: PendingEvent[]): Promise<JobEventOutcome[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.dataSource.transaction((manager) => this.write(manager, batch));
      } catch (error) {
        if (!isDeadlock(error) || attempt > DEADLOCK_RETRIES) throw error;
        this.logger.warn(`writing ${batch.length} job event(s) deadlocked (attempt ${attempt}), writing them again`);
      }
    }
  }

  private async write(manager: EntityManager, batch: PendingEvent[]): Promise<JobEventOutcome[]> {
    const commandIds = [...new Set(batch.map((pending) => pending.event.commandId))].sort();
    // ORDER BY id: every multi-row locker takes locks in the same order
    const locked: LockedCommand[] = await manager.query(
      'SELECT id, device_id, status, type FROM device_commands WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE',
      [commandIds],
    );
    const commands = new Map(locked.map((command) => [command.id, command]));
    const ownCommand = (pending: PendingEvent) => {
      const command = commands.get(pending.event.commandId);
      return command && command.device_id === pending.deviceId ? command : undefined;
    };

    // the first of several copies of one eventId in the batch is the one that may be new
    const firstCopies = new Set<PendingEvent>();
    const seenEventIds = new Set<string>();
    for (const pending of batch) {
      if (!ownCommand(pending) || seenEventIds.has(pending.event.eventId)) continue;
      seenEventIds.add(pending.event.eventId);
      firstCopies.add(pending);
    }
    const payloads = new Map(
      [...firstCopies].map((pending) => [
        pending,
        JSON.parse(JSON.stringify(pending.event)) as Record<string, unknown>,
      ]),
    );
    const inserted = new Set<string>();
    if (firstCopies.size > 0) {
      const rows = [...firstCopies].map((pending, n) => ({
        n,
        event_id: pending.event.eventId,
        device_id: pending.deviceId,
        command_id: pending.event.commandId,
        type: pending.event.type,
        occurred_at: pending.event.at,
        received_at: pending.receivedAt,
        payload: payloads.get(pending),
      }));
      // ORDER BY n: seq follows arrival order, which the rollout engine's follower reads in
      const returned: Array<{ event_id: string }> = await manager.query(
        `INSERT INTO device_job_events (event_id, device_id, command_id, type, occurred_at, received_at, payload)
           SELECT v.event_id, v.device_id, v.command_id, v.type, v.occurred_at, v.received_at, v.payload
             FROM jsonb_to_recordset($1::jsonb) AS v(
               n integer, event_id uuid, device_id text, command_id uuid, type text, occurred_at timestamptz,
               received_at timestamptz, payload jsonb)
            ORDER BY n
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
        [JSON.stringify(rows)],
      );
      for (const row of returned) inserted.add(row.event_id);
    }

    const updates = new Map<string, { status: CommandStatus; lastEvent: Record<string, unknown> }>();
    const audits: AuditEntryInput[] = [];
    const outcomes = batch.map((pending): JobEventOutcome => {
      const command = ownCommand(pending);
      if (!command) return { result: 'unknown-command' };
      const { event, deviceId } = pending;
      if (!firstCopies.has(pending) || !inserted.has(event.eventId)) return { result: 'duplicate' };
      const payload = payloads.get(pending)!;
      const current = updates.get(command.id)?.status ?? command.status;
      const next = nextCommandStatus(current, event.type);
      if (next) {
        updates.set(command.id, { status: next, lastEvent: payload });
        audits.push({
          actor: deviceActor(deviceId),
          action: `device.command.${next}`,
          subjectType: 'device',
          subjectId: deviceId,
          before: { commandId: event.commandId, status: current },
          after: { commandId: event.commandId, type: command.type, status: next, event: payload },
          reason: event.error ? `${event.error.code}: ${event.error.message}` : undefined,
        });
      } else if (event.type === JobEventType.Progress && current === CommandStatus.InProgress) {
        // progress is not a transition, but the command shows the latest figures
        updates.set(command.id, { status: current, lastEvent: payload });
      }
      return { result: 'stored', status: next ?? current, changed: next !== null };
    });

    if (updates.size > 0) {
      const values = [...updates].map(([id, { status, lastEvent }]) => ({ id, status, last_event: lastEvent }));
      await manager.query(
        `UPDATE device_commands AS c SET status = v.status, last_event = v.last_event, updated_at = now()
           FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, status text, last_event jsonb)
          WHERE c.id = v.id`,
        [JSON.stringify(values)],
      );
    }
    await this.audit.recordMany(audits, manager);
    return outcomes;
  }
}
