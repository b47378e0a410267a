import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@cowroot/device';
import { MaintenanceWindow } from '@cowroot/protocol';

/** The wire form of a job event as the agent keeps it (the JobEventMessage JSON). */
export type StoredEvent = Record<string, unknown> & { commandId: string; eventId: string; type: string };

export type CommandStatus = 'running' | 'done';

export interface CommandRecord {
  type: string;
  receivedAt: string;
  status: CommandStatus;
  /** the last event sent for it: what a redelivery is answered with */
  lastEvent: StoredEvent | null;
}

/** A trial requested by a command, kept until its outcome is reported (docs/agent.md §4). */
export interface TrialRecord {
  commandId: string;
  snapshot: string;
  /** the snapshot a failed trial falls back to, as the env said when the trial was requested */
  fallback: string | null;
  requestedAt: string;
  /** set in the trial boot */
  verdict?: 'confirmed' | 'rejected';
  check?: string;
  outputTail?: string;
}

export interface ScheduledReboot {
  commandId: string;
  window: { start: string; end: string } | MaintenanceWindow;
}

interface JournalData {
  version: 1;
  commands: Record<string, CommandRecord>;
  /** insertion order of `commands`, oldest first, for trimming */
  order: string[];
  trial: TrialRecord | null;
  scheduledReboot: ScheduledReboot | null;
  /** events not yet acknowledged by the broker (PUBACK), re-sent after a reconnect or a reboot */
  outbox: StoredEvent[];
}

const FILE_NAME = 'journal.json';
/** Enough to answer any redelivery the broker or the server could still make. */
const MAX_COMMANDS = 1000;
const MAX_OUTBOX = 200;

function emptyJournal(): JournalData {
  return { version: 1, commands: {}, order: [], trial: null, scheduledReboot: null, outbox: [] };
}

/**
 * The agent's memory across restarts and reboots, one JSON file in the state dir, rewritten atomically
 * (temp file + fsync + rename + directory fsync) on every change. It makes commands at-most-once: a command
 * id is recorded BEFORE anything is done for it, so a redelivered id is recognised even after a crash.
 */
export class CommandJournal {
  private data: JournalData = emptyJournal();
  /** writes are serialised so a later state never gets overwritten by an earlier one */
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly stateDir: string) {}

  get path(): string {
    return join(this.stateDir, FILE_NAME);
  }

  /** Loads the journal; a missing file is an empty journal, an unreadable one is kept aside and replaced. */
  async load(): Promise<{ recovered: boolean }> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { recovered: false };
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as Partial<JournalData>;
      if (parsed.version !== 1 || typeof parsed.commands !== 'object' || parsed.commands === null)
        throw new Error('bad shape');
      this.data = {
        ...emptyJournal(),
        ...parsed,
        order: Array.isArray(parsed.order) ? parsed.order : Object.keys(parsed.commands),
        outbox: Array.isArray(parsed.outbox) ? parsed.outbox : [],
      } as JournalData;
      return { recovered: false };
    } catch {
      // atomic writes make this unlikely; keep the bad file for a human and start clean
      await writeFileAtomic(join(this.stateDir, `${FILE_NAME}.corrupt-${Date.now()}`), text);
      await rm(this.path, { force: true });
      this.data = emptyJournal();
      return { recovered: true };
    }
  }

  private persist(): Promise<void> {
    const snapshot = `${JSON.stringify(this.data)}\n`;
    this.writing = this.writing.catch(() => undefined).then(() => writeFileAtomic(this.path, snapshot));
    return this.writing;
  }

  get(commandId: string): CommandRecord | undefined {
    return this.data.commands[commandId];
  }

  /**
   * Records a command before it is executed. Returns false (and records nothing) when the id is known:
   * the caller must then answer the redelivery instead of running it again.
   */
  async begin(commandId: string, type: string, at = new Date()): Promise<boolean> {
    if (this.data.commands[commandId]) return false;
    this.data.commands[commandId] = { type, receivedAt: at.toISOString(), status: 'running', lastEvent: null };
    this.data.order.push(commandId);
    while (this.data.order.length > MAX_COMMANDS) {
      const oldest = this.data.order.shift()!;
      delete this.data.commands[oldest];
    }
    await this.persist();
    return true;
  }

  /** Remembers the last event of a command (and the final status when it is terminal). */
  async recordEvent(event: StoredEvent, terminal: boolean): Promise<void> {
    const record = this.data.commands[event.commandId];
    if (record) {
      record.lastEvent = event;
      if (terminal) record.status = 'done';
    }
    await this.persist();
  }

  /**
   * Remembers an event in memory only, for an outcome whose journal write failed (a full disk): a
   * redelivery in this run is still answered with it, and the next write that succeeds persists it.
   */
  rememberEvent(event: StoredEvent, terminal: boolean): void {
    const record = this.data.commands[event.commandId];
    if (!record) return;
    record.lastEvent = event;
    if (terminal) record.status = 'done';
  }

  /** Commands that were running when the agent stopped (a crash or a reboot mid-job). */
  running(): Array<{ commandId: string; record: CommandRecord }> {
    return Object.entries(this.data.commands)
      .filter(([, record]) => record.status === 'running')
      .map(([commandId, record]) => ({ commandId, record }));
  }

  get trial(): TrialRecord | null {
    return this.data.trial;
  }

  async setTrial(trial: TrialRecord | null): Promise<void> {
    this.data.trial = trial;
    await this.persist();
  }

  get scheduledReboot(): ScheduledReboot | null {
    return this.data.scheduledReboot;
  }

  async setScheduledReboot(reboot: ScheduledReboot | null): Promise<void> {
    this.data.scheduledReboot = reboot;
    await this.persist();
  }

  get outbox(): readonly StoredEvent[] {
    return this.data.outbox;
  }

  async addToOutbox(event: StoredEvent): Promise<void> {
    this.data.outbox.push(event);
    // progress is never kept, so this only drops very old terminal events of a device that was offline for long
    if (this.data.outbox.length > MAX_OUTBOX) this.data.outbox.splice(0, this.data.outbox.length - MAX_OUTBOX);
    await this.persist();
  }

  async removeFromOutbox(eventId: string): Promise<void> {
    const before = this.data.outbox.length;
    this.data.outbox = this.data.outbox.filter((event) => event.eventId !== eventId);
    if (this.data.outbox.length !== before) await this.persist();
  }

  /** Waits for the last write, for shutdown. */
  async flush(): Promise<void> {
    await this.writing.catch(() => undefined);
  }
}
