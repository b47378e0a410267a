import { Logger } from '@nestjs/common';
import { isMessageFault } from '../database/message-fault';

export interface GroupCommitOptions<I, O> {
  /** Writes (or reads) one batch, in one transaction or statement; one result per item, in item order. */
  write: (batch: I[]) => Promise<O[]>;
  /** The answer for an item the database refuses on its own (a data fault); without it the item is rejected. */
  refused?: (item: I, error: Error) => O;
  /** Items per batch; bounded so one transaction stays short. */
  maxBatch?: number;
  logger: Logger;
  /** what one item is, for the log: "state report" */
  noun: string;
  /** names a refused item in the log: `deviceId=…` */
  label?: (item: I) => string;
  /**
   * Under load (a batch just finished and fewer than LINGER_BELOW items wait), wait this long before the
   * next batch so more join it. Each batch is a few round trips whose cost hardly depends on its size, so in
   * a storm fewer, larger batches are what lets the server keep up; when idle nothing waits. Default 0.
   */
  lingerMs?: number;
}

/** A batch this large goes at once even under load: waiting would not make it much cheaper per item. */
export const LINGER_BELOW = 64;
/**
 * 10,000 devices connecting, 200 at a time (`npm run bench:rollout`, 2026-12-07): without lingering the
 * server spent 1.7–1.9 ms of CPU and PostgreSQL 0.9–1.1 ms per device, in ~20,000 statements; 5 ms:
 * 1.2–1.4 and 0.5–0.6 ms; 10 ms: 1.3 and 0.45 ms, in ~5,000 statements; 20 ms no better. A device's
 * connect takes ~0.5 s in such a storm, so 10 ms more per batch is lost in it.
 */
export const DEFAULT_LINGER_MS = 10;

interface Pending<I, O> {
  item: I;
  resolve: (result: O) => void;
  reject: (error: Error) => void;
}

/**
 * Group commit: items submitted while a batch runs wait for the next one, so under load one round trip
 * carries hundreds of them, and when idle an item goes at once (after the current turn: setImmediate lets
 * everything read from the sockets in that turn join). With `lingerMs`, a small batch right after another
 * waits that long for company. One batch at a time, items in submit order: what one
 * device sends stays in order across batches.
 *
 * Isolation (docs/protocol.md §7.1): a batch that fails because of what an item contains (isMessageFault) is
 * split in halves and each half written again, in order, down to the one item the database refuses on its
 * own, which gets `refused` (or its error); every other item of the batch succeeds. A failure that is not
 * the data's fault (connection lost) fails the whole batch.
 */
export class GroupCommit<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private running: Promise<void> | null = null;

  constructor(private readonly options: GroupCommitOptions<I, O>) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.running ??= new Promise<void>((done) => setImmediate(() => void this.run().finally(done)));
    });
  }

  /** Resolves when every submitted item has been written (or failed). */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    const lingerMs = this.options.lingerMs ?? DEFAULT_LINGER_MS;
    try {
      let busy = false;
      while (this.queue.length > 0) {
        if (busy && lingerMs > 0 && this.queue.length < LINGER_BELOW) {
          await new Promise((resolve) => setTimeout(resolve, lingerMs));
        }
        await this.writeIsolating(this.queue.splice(0, this.options.maxBatch ?? 1000));
        busy = true;
      }
    } finally {
      this.running = null;
    }
  }

  private async writeIsolating(batch: Array<Pending<I, O>>): Promise<void> {
    const { logger, noun } = this.options;
    try {
      const results = await this.options.write(batch.map((pending) => pending.item));
      batch.forEach((pending, i) => pending.resolve(results[i]));
    } catch (error) {
      const message = (error as Error).message;
      if (!isMessageFault(error)) {
        logger.error(`${batch.length} ${noun}(s) failed: ${message}`);
        for (const pending of batch) pending.reject(error as Error);
      } else if (batch.length === 1) {
        const label = this.options.label?.(batch[0].item);
        logger.warn(`${label ? `${label} ` : ''}${noun} refused by the database: ${message}`);
        const refused = this.options.refused;
        if (refused) batch[0].resolve(refused(batch[0].item, error as Error));
        else batch[0].reject(error as Error);
      } else {
        const half = Math.ceil(batch.length / 2);
        await this.writeIsolating(batch.slice(0, half));
        await this.writeIsolating(batch.slice(half));
      }
    }
  }
}
