import { randomBytes } from 'node:crypto';
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DeltaCommand, MAX_COMMAND_BYTES, decodeBatchBegin, decodeBatchSource, plainCommandsAt } from './delta-format';
import { PredecessorRef, readPredecessorSync } from './predecessor';
import { COMMAND_HEADER_BYTES } from './send-stream';

/** What a batch's dictionary is written out in, and how much is done between two turns of the event loop. */
const DICTIONARY_BUFFER = 256 * 1024;

/**
 * How far past the end of a section's patch data the next batch is looked for. Between two batches the
 * writer leaves only the few commands that did not fit the last one, and a batch's BATCH_SOURCEs are about
 * 100 bytes each (a few hundred per batch), so 256 KiB finds it, and bounds what the lookahead holds.
 */
export const LOOKAHEAD_BYTES = 256 * 1024;

/**
 * The batch's predecessors, located (regular files inside the parent, of the sizes named) and
 * concatenated into a scratch file that is unlinked at once, as an open descriptor: zstd takes its
 * dictionary only from a regular file (never a pipe), and an unlinked one leaves nothing behind, whatever
 * happens next. Its size is bounded by the window the device accepts. Not hashed: the batch's zstd frame
 * checksums what it decodes to, so other bytes in a predecessor fail the decode, and only then are the
 * sources hashed to name the one at fault (DeltaSections.batch); the sha256 of every source was ≈ 18 ms
 * of a Debian point release's rebuild under the agent's flags (757 sources, 15 MB), before any byte decoded.
 *
 * Cooperative: the reads are synchronous (an asynchronous read per small file costs more than the read,
 * see predecessor.ts), but after each DICTIONARY_BUFFER the event loop gets a turn, so that a dictionary
 * written ahead (DictionaryPrefetch) while a batch decodes does not stall that batch's output on its way
 * to `btrfs receive` for the whole dictionary (measured: tens of ms per batch with the pipe run dry).
 */
export async function writeDictionary(
  sources: readonly PredecessorRef[],
  /** each source located in the parent (throws DELTA_BASE_MISMATCH): all of them before any is read */
  locate: (source: PredecessorRef) => string,
  scratchDir: string,
): Promise<number> {
  const paths = sources.map(locate);
  const path = join(scratchDir, `.delta-dictionary-${randomBytes(6).toString('hex')}`);
  const fd = openSync(path, 'wx+', 0o600);
  unlinkSync(path);
  try {
    // small files are read into one buffer and written out together: a write per file cost more
    const buffer = Buffer.allocUnsafe(DICTIONARY_BUFFER);
    let used = 0;
    let at = 0;
    const flush = () => {
      for (let done = 0; done < used;) done += writeSync(fd, buffer, done, used - done, at + done);
      at += used;
      used = 0;
    };
    for (let i = 0; i < sources.length; i++) {
      const source = sources[i];
      if (used + source.sourceSize > buffer.length) {
        flush();
        await nextTurn();
      }
      if (source.sourceSize > buffer.length) {
        // larger than the buffer: through it, chunk by chunk
        readPredecessorSync(
          paths[i],
          source,
          buffer,
          (bytes) => {
            used = bytes.length;
            flush();
          },
          false,
        );
      } else {
        const sink = (bytes: Buffer) => {
          used += bytes.length;
        };
        readPredecessorSync(paths[i], source, buffer.subarray(used), sink, false);
      }
    }
    flush();
    return fd;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** The whole command at `at` in `view`, or null when it does not lie there whole. */
function commandAt(view: Buffer, at: number): Buffer | null {
  if (at + COMMAND_HEADER_BYTES > view.length) return null;
  const length = view.readUInt32LE(at);
  if (length > MAX_COMMAND_BYTES || at + COMMAND_HEADER_BYTES + length > view.length) return null;
  return view.subarray(at, at + COMMAND_HEADER_BYTES + length);
}

/**
 * The sources and window of the batch that `view` (the delta stream from a command boundary on, read
 * ahead) opens after its plain commands, or null when none lies in it whole. Only a hint: anything odd (another
 * section first, a cut, an undecodable command) is null, and the real pass over the same bytes reports it.
 * No crc is checked here: the batch checks its commands' crcs only when it fails (UncheckedCommands in
 * section-commands.ts), and a hint from damaged bytes prepares a dictionary the batch either takes (the
 * same damaged sources, so the same failure) or drops.
 */
export function nextBatchHint(view: Buffer): BatchHint | null {
  let at = plainCommandsAt(view);
  const begin = commandAt(view, at);
  if (!begin || begin.readUInt16LE(4) !== DeltaCommand.BatchBegin) return null;
  try {
    const { sources: count, windowLog } = decodeBatchBegin(begin.subarray(COMMAND_HEADER_BYTES));
    at += begin.length;
    const sources: PredecessorRef[] = [];
    for (let i = 0; i < count; i++) {
      const command = commandAt(view, at);
      if (!command || command.readUInt16LE(4) !== DeltaCommand.BatchSource) return null;
      const source = decodeBatchSource(command.subarray(COMMAND_HEADER_BYTES));
      sources.push({ sourcePath: source.path, sourceSize: source.size, sourceSha256: source.sha256 });
      at += command.length;
    }
    return { sources, windowLog };
  } catch {
    return null;
  }
}

const sameSources = (a: readonly PredecessorRef[], b: readonly PredecessorRef[]) =>
  a.length === b.length &&
  a.every(
    (s, i) =>
      s.sourcePath === b[i].sourcePath && s.sourceSize === b[i].sourceSize && s.sourceSha256 === b[i].sourceSha256,
  );

/** What the next batch is prepared from: its sources and its window. */
export interface BatchHint {
  sources: PredecessorRef[];
  windowLog: number;
}

/**
 * The next batch made ready while the current section decodes (docs/delta-benchmark-log.md, "prefetch of
 * the next batch"): its dictionary written and its decoder started on it, waiting for its patch, so that the
 * predecessor reads and the decoder's start overlap the current decode and the receive instead of
 * stopping both. `T` is what `prepare` makes (a started decoder; anything with a `release`). At most one
 * is held; one that is not taken (the next batch turned out different, or the rebuild failed first) is
 * released, and its failure, if any, is dropped: the batch that reads the same sources again meets the
 * same failure itself.
 */
export class DictionaryPrefetch<T> {
  private pending: { hint: BatchHint; prepared: Promise<T> } | null = null;
  /** batches whose dictionary was taken, and of those the ones written ahead */
  readonly stats = { taken: 0, prefetched: 0 };

  constructor(
    private readonly prepare: (hint: BatchHint) => Promise<T>,
    private readonly release: (prepared: T) => void,
  ) {}

  /** Starts preparing the batch of `hint` (dropping one held for another). */
  start(hint: BatchHint): void {
    if (this.pending && this.matches(this.pending.hint, hint)) return;
    this.discard();
    const prepared = this.prepare(hint);
    prepared.catch(() => undefined);
    this.pending = { hint, prepared };
  }

  /** The batch of `hint` prepared: the one made ahead when it is this one, else made now. */
  take(hint: BatchHint): Promise<T> {
    const pending = this.pending;
    this.pending = null;
    this.stats.taken += 1;
    if (pending && this.matches(pending.hint, hint)) {
      this.stats.prefetched += 1;
      return pending.prepared;
    }
    if (pending) this.drop(pending.prepared);
    return this.prepare(hint);
  }

  /** Releases what is held (the end of a rebuild, successful or not). */
  discard(): void {
    if (this.pending) this.drop(this.pending.prepared);
    this.pending = null;
  }

  private matches(a: BatchHint, b: BatchHint): boolean {
    return a.windowLog === b.windowLog && sameSources(a.sources, b.sources);
  }

  private drop(prepared: Promise<T>): void {
    prepared.then(
      (value) => this.release(value),
      () => undefined,
    );
  }
}
