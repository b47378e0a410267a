import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Client } from 'pg';
import { Subject } from 'rxjs';
import { DataSource } from 'typeorm';

export const CHANGE_FEED_OPTIONS = Symbol('CHANGE_FEED_OPTIONS');

export interface ChangeFeedOptions {
  /** the server's own database URL: a dedicated connection LISTENs on it */
  databaseUrl: string;
  /** PGlite behind pglite-socket: a NOTIFY never reaches another connection, so the table is polled */
  embedded: boolean;
}

/** What changed: the topic and the subjects (rollout ids, device ids, …); null ids = too many to list. */
export interface Change {
  topic: 'rollout' | 'device' | 'release' | 'audit';
  ids: string[] | null;
}

/** PGlite is polled this often: within the dashboard's 2 s budget with room for the page's own fetch. */
const POLL_MS = 300;
/** On PostgreSQL a NOTIFY wakes the reader; this slow poll only covers a connection that was lost. */
const FALLBACK_POLL_MS = 5_000;
const KEEP_MS = 10 * 60_000;
/**
 * Notifications this close after a first one are read together: in a connect storm the devices' batches
 * commit (and notify) hundreds of times a second, and a read each was a third of the server's queries.
 */
const COALESCE_MS = 100;

/**
 * The database's change feed (migrations/1764800000000-dashboard.ts) as an in-process stream. Triggers
 * write every change of the followed tables into change_feed whichever replica made it, so a page on any
 * replica sees changes made through any other. This reader wakes on NOTIFY cowroot_changes (PostgreSQL)
 * or polls (PGlite) and always reads the rows after the last id it has seen.
 */
@Injectable()
export class ChangeFeedService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(ChangeFeedService.name);
  readonly changes = new Subject<Change>();
  private lastId = 0n;
  private listener: Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private lastPrune = 0;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(CHANGE_FEED_OPTIONS) private readonly options: ChangeFeedOptions,
  ) {}

  async onModuleInit(): Promise<void> {
    const [row] = (await this.dataSource.query(`SELECT coalesce(max(id), 0)::text AS id FROM change_feed`)) as Array<{
      id: string;
    }>;
    this.lastId = BigInt(row.id);
    if (!this.options.embedded) await this.listen();
    this.schedule();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    await this.reading;
    await this.listener?.end().catch(() => undefined);
    this.changes.complete();
  }

  private async listen(): Promise<void> {
    const client = new Client({ connectionString: this.options.databaseUrl });
    client.on('error', (error) => {
      this.logger.warn(`change feed LISTEN connection lost (${error.message}); polling every ${FALLBACK_POLL_MS} ms`);
      this.listener = null;
    });
    client.on('notification', () => this.wake());
    await client.connect();
    await client.query('LISTEN cowroot_changes');
    this.listener = client;
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay = this.listener ? FALLBACK_POLL_MS : POLL_MS;
    this.timer = setTimeout(() => {
      this.read();
      this.schedule();
    }, delay);
  }

  private wake(): void {
    if (this.stopped || this.wakeTimer) return;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.read();
    }, COALESCE_MS);
  }

  /** One read at a time; a wake-up during a read makes one more read after it. */
  private read(): void {
    if (this.stopped) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.readOnce()
      .catch((error: Error) => this.logger.warn(`change feed read failed: ${error.message}`))
      .finally(() => {
        this.reading = null;
        if (this.again) {
          this.again = false;
          this.read();
        }
      });
  }

  private async readOnce(): Promise<void> {
    const rows = (await this.dataSource.query(
      `SELECT id::text AS id, topic, ids FROM change_feed WHERE id > $1 ORDER BY id LIMIT 1000`,
      [this.lastId.toString()],
    )) as Array<{ id: string; topic: Change['topic']; ids: string[] | null }>;
    for (const row of rows) {
      this.lastId = BigInt(row.id);
      this.changes.next({ topic: row.topic, ids: row.ids });
    }
    if (Date.now() - this.lastPrune > 60_000) {
      this.lastPrune = Date.now();
      await this.dataSource.query(`DELETE FROM change_feed WHERE at < now() - $1::interval`, [
        `${KEEP_MS} milliseconds`,
      ]);
    }
  }
}
