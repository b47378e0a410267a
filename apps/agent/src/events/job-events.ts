import { randomUUID } from 'node:crypto';
import { DeviceChannel, JobEventType, PROTOCOL_VERSION, parseReportReceipt } from '@cowroot/protocol';
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
/** Receipts mode: an event still without a receipt this long after it was last sent goes again. */
export const RECEIPT_RESEND_MS = 15_000;

export type EventExtra = Omit<Partial<StoredEvent>, 'commandId' | 'eventId' | 'type' | 'v' | 'at'>;

/**
 * The job events of the agent (docs/agent.md §3, §4): logged, remembered as the command's last event and
 * kept in the journal's outbox until the server has them, so an event sent just before a reboot or while
 * the link was down still arrives. "Has them" is the PUBACK with the embedded broker, which acknowledges a
 * report only after its commit; with `receipts` (the NATS cluster, whose PUBACK comes before its stream
 * stored the report: docs/protocol.md §5.4) it is the server's receipt, and until then the event is sent
 * again on every connect and RECEIPT_RESEND_MS after it was last sent.
 */
export class JobEvents {
  /** receipts mode: when each outbox event was last handed to the link */
  private readonly lastSent = new Map<string, number>();
  private resendTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly journal: CommandJournal,
    private readonly link: MqttLink,
    private readonly logger: AgentLogger,
    private readonly receipts = false,
  ) {}

  private build(commandId: string, type: JobEventType, extra: EventExtra): StoredEvent {
    return { v: PROTOCOL_VERSION, commandId, eventId: randomUUID(), type, at: new Date().toISOString(), ...extra };
  }

  /** Publishes a recorded event; resolves at PUBACK, then drops it from the outbox (without `receipts`). */
  send(event: StoredEvent): Promise<void> {
    if (this.receipts && event.type !== JobEventType.Progress) this.lastSent.set(event.eventId, Date.now());
    const published = this.link
      .publish(DeviceChannel.Events, event)
      .then(() => (this.receipts ? undefined : this.journal.removeFromOutbox(event.eventId)));
    published.catch((error) =>
      this.logger.warn('publishing an event failed', { commandId: event.commandId, error: errorOf(error).message }),
    );
    return published;
  }

  /**
   * Receipts mode: takes the server's receipts from the link, sends the whole outbox again on every connect
   * (a PUBACKed event may still be missing) and, while connected, what has waited RECEIPT_RESEND_MS.
   */
  watchReceipts(): void {
    if (!this.receipts || this.resendTimer) return;
    this.link.on('receipt', (payload: Buffer) => {
      const parsed = parseReportReceipt(payload);
      if (!parsed.ok) return this.logger.warn('ignoring a malformed receipt', { error: parsed.message.slice(0, 256) });
      this.receipted(parsed.value.eventIds).catch((error) =>
        this.logger.warn('dropping receipted events from the outbox failed', { error: errorOf(error).message }),
      );
    });
    this.link.on('connect', () => this.resendOutbox());
    this.resendTimer = setInterval(() => {
      if (!this.link.connected) return;
      const resent = this.resendOutbox(RECEIPT_RESEND_MS);
      if (resent > 0) this.logger.info('re-sent events still without a receipt', { count: resent });
    }, RECEIPT_RESEND_MS);
    this.resendTimer.unref();
  }

  stop(): void {
    if (this.resendTimer) clearInterval(this.resendTimer);
    this.resendTimer = null;
  }

  /** docs/protocol.md §5.4: the server is done with these events (stored, or refused for good). */
  async receipted(eventIds: readonly string[]): Promise<void> {
    for (const eventId of eventIds) {
      this.lastSent.delete(eventId);
      await this.journal.removeFromOutbox(eventId);
    }
  }

  /** Sends again every outbox event last sent at least `olderThanMs` ago (0: all of them). Returns how many. */
  resendOutbox(olderThanMs = 0): number {
    const now = Date.now();
    const due = this.journal.outbox.filter((event) => now - (this.lastSent.get(event.eventId) ?? 0) >= olderThanMs);
    for (const event of due) void this.send(event).catch(() => undefined);
    return due.length;
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
