import { randomUUID } from 'node:crypto';
import { DeviceChannel, JobEventType, PROTOCOL_VERSION } from '@cowroot/protocol';
import { CommandJournal, StoredEvent } from '../journal/command-journal';
import { AgentLogger } from '../logger';
import { MqttLink } from '../mqtt/mqtt-link';
import { errorOf, isDiskFull } from './error-of';

/** Event types after which a command has nothing more to do in this process. */
export const TERMINAL: ReadonlySet<JobEventType> = new Set([
  JobEventType.Staged,
  JobEventType.Failed,
  JobEventType.Canceled,
  JobEventType.Completed,
  JobEventType.Confirmed,
  JobEventType.Rejected,
  JobEventType.RolledBack,
]);

/** The fields of an event besides its identity (docs/protocol.md §5.2). */
export type EventExtra = Omit<Partial<StoredEvent>, 'commandId' | 'eventId' | 'type' | 'v' | 'at'>;

/**
 * The job events of the agent (docs/agent.md §3, §4): logged, remembered as the command's last event and
 * kept in the journal's outbox until the broker acknowledged them, so an event sent just before a reboot
 * or while the link was down still arrives.
 */
export class JobEvents {
  constructor(
    private readonly journal: CommandJournal,
    private readonly link: MqttLink,
    private readonly logger: AgentLogger,
  ) {}

  private build(commandId: string, type: JobEventType, extra: EventExtra): StoredEvent {
    return { v: PROTOCOL_VERSION, commandId, eventId: randomUUID(), type, at: new Date().toISOString(), ...extra };
  }

  /** Publishes a recorded event; resolves at PUBACK, then drops it from the outbox. */
  send(event: StoredEvent): Promise<void> {
    const published = this.link
      .publish(DeviceChannel.Events, event)
      .then(() => this.journal.removeFromOutbox(event.eventId));
    published.catch((error) =>
      this.logger.warn('publishing an event failed', { commandId: event.commandId, error: errorOf(error).message }),
    );
    return published;
  }

  /**
   * Sends a job event. Resolves once it is recorded in the journal (progress is never recorded);
   * `delivered` resolves at PUBACK. Throws when the journal cannot be written (ENOSPC).
   */
  async emit(commandId: string, type: JobEventType, extra: EventExtra = {}): Promise<{ delivered: Promise<void> }> {
    const event = this.build(commandId, type, extra);
    this.logger.info(`event ${type}`, { commandId, ...extra });
    if (type !== JobEventType.Progress) {
      await this.journal.recordEvent(event, TERMINAL.has(type));
      await this.journal.addToOutbox(event);
    }
    const delivered = this.send(event);
    delivered.catch(() => undefined);
    return { delivered };
  }

  /**
   * `accepted` + `duplicate: true` for a redelivered command (docs/agent.md §3). Kept in the outbox like
   * any event, but not as the command's last event: a later redelivery must still be answered with the
   * outcome. A full disk does not stop the answer.
   */
  async acknowledgeDuplicate(commandId: string, extra: EventExtra): Promise<void> {
    const event = this.build(commandId, JobEventType.Accepted, { duplicate: true, ...extra });
    this.logger.info(`event ${JobEventType.Accepted}`, { commandId, duplicate: true, ...extra });
    try {
      await this.journal.addToOutbox(event);
    } catch (error) {
      if (!isDiskFull(error)) throw error;
      this.logger.warn('the duplicate answer is not kept in the outbox: no space left', { commandId });
    }
    void this.send(event).catch(() => undefined);
  }

  /**
   * The last resort when the journal cannot be written (a full disk): the outcome goes out over MQTT
   * without being recorded, so the operator learns of it (docs/agent.md §3). Never throws.
   */
  async emitUnrecorded(commandId: string, type: JobEventType, extra: EventExtra = {}): Promise<void> {
    const event = this.build(commandId, type, extra);
    this.logger.warn(`event ${type} (not recorded in the journal)`, { commandId, ...extra });
    this.journal.rememberEvent(event, TERMINAL.has(type));
    await this.link
      .publish(DeviceChannel.Events, event)
      .catch((error) => this.logger.warn('publishing an event failed', { commandId, error: errorOf(error).message }));
  }
}
