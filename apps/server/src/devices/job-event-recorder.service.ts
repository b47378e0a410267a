import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { JobEventMessage, JobEventType } from '@cowroot/protocol';
import { DataSource } from 'typeorm';
import { deviceActor } from '../auth/actor';
import { AuditService } from '../audit/audit.service';
import { isMessageFault } from '../database/message-fault';
import { CommandStatus, nextCommandStatus } from './command-status';
import { KeyedSerialQueue } from './keyed-serial-queue';

export type JobEventOutcome =
  | { result: 'stored'; status: CommandStatus; changed: boolean }
  | { result: 'duplicate' }
  | { result: 'unknown-command' }
  /** the database refused this event on its own (docs/protocol.md §7.1 UNSTORABLE) */
  | { result: 'unstorable'; detail: string };

/**
 * Stores job events once per eventId (a redelivered QoS 1 publish is dropped by the unique index) and moves
 * the command's status forward; status changes are audited. Events of one device are written in order.
 */
@Injectable()
export class JobEventRecorder {
  private readonly queue = new KeyedSerialQueue();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
  ) {}

  record(deviceId: string, event: JobEventMessage, receivedAt = new Date()): Promise<JobEventOutcome> {
    return this.queue.run(deviceId, () =>
      this.write(deviceId, event, receivedAt).catch((error: unknown): JobEventOutcome => {
        // one transaction per event: a refused event costs no other event; it is acknowledged, not resent
        if (!isMessageFault(error)) throw error;
        return { result: 'unstorable', detail: `the database refused it: ${(error as Error).message}` };
      }),
    );
  }

  private write(deviceId: string, event: JobEventMessage, receivedAt: Date): Promise<JobEventOutcome> {
    return this.dataSource.transaction(async (manager): Promise<JobEventOutcome> => {
      const commands: Array<{ status: CommandStatus; type: string }> = await manager.query(
        'SELECT status, type FROM device_commands WHERE id = $1 AND device_id = $2 FOR UPDATE',
        [event.commandId, deviceId],
      );
      if (commands.length === 0) return { result: 'unknown-command' };
      const payload = JSON.parse(JSON.stringify(event)) as Record<string, unknown>;
      const inserted: unknown[] = await manager.query(
        `INSERT INTO device_job_events (event_id, device_id, command_id, type, occurred_at, received_at, payload)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING RETURNING seq`,
        [event.eventId, deviceId, event.commandId, event.type, event.at, receivedAt, payload],
      );
      if (inserted.length === 0) return { result: 'duplicate' };
      const current = commands[0].status;
      const next = nextCommandStatus(current, event.type);
      if (next) {
        await manager.query(
          'UPDATE device_commands SET status = $2, last_event = $3, updated_at = now() WHERE id = $1',
          [event.commandId, next, payload],
        );
        await this.audit.record(
          {
            actor: deviceActor(deviceId),
            action: `device.command.${next}`,
            subjectType: 'device',
            subjectId: deviceId,
            before: { commandId: event.commandId, status: current },
            after: { commandId: event.commandId, type: commands[0].type, status: next, event: payload },
            reason: event.error ? `${event.error.code}: ${event.error.message}` : undefined,
          },
          manager,
        );
      } else if (event.type === JobEventType.Progress && current === CommandStatus.InProgress) {
        // progress is not a transition, but the command shows the latest figures
        await manager.query('UPDATE device_commands SET last_event = $2, updated_at = now() WHERE id = $1', [
          event.commandId,
          payload,
        ]);
      }
      return { result: 'stored', status: next ?? current, changed: next !== null };
    });
  }

  drain(): Promise<void> {
    return this.queue.drain();
  }
}
