import { randomBytes } from 'node:crypto';
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DeltaCommand, MAX_COMMAND_BYTES, decodeBatchBegin, decodeBatchSource, plainCommandsAt } from './delta-format';
import { PredecessorRef, readPredecessorSync } from './predecessor';
import { COMMAND_HEADER_BYTES, hasValidCrc } from './send-stream';

/** What a batch's dictionary is written out in, and how much is done between two turns of the event loop. */
const DICTIONARY_BUFFER = 256 * 1024;

/**
 * How far past the end of a section's patch data the next batch is looked for. Between two batches the
 * writer leaves only the few commands that did not fit the last one, and a batch's BATCH_SOURCEs are about
 * 100 bytes each (a few hundred per batch), so 256 KiB finds it, and bounds what the lookahead holds.
 */
export const LOOKAHEAD_BYTES = 256 * 1024;

/**
 * The batch's predecessors, checked and concatenated into a scratch file that is unlinked at once, as an
 * open descriptor: zstd takes its dictionary only from a regular file (never a pipe), and an unlinked one
 * leaves nothing behind, whatever happens next. Its size is bounded by the window the device accepts.
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
        readPredecessorSync(paths[i], source, buffer, (bytes) => {
          used = bytes.length;
          flush();
        });
      } else {
        readPredecessorSync(paths[i], source, buffer.subarray(used), (bytes) => {
          used += bytes.length;
        });
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
 * The sources of the batch that `view` (the delta stream from a command boundary on, read ahead) opens
 * after its plain commands, or null when none lies in it whole. Only a hint: anything odd (another
 * section first, a bad crc, a cut) is null, and the real pass over the same bytes reports it.
 */
export function nextBatchSources(view: Buffer): PredecessorRef[] | null {
  let at = plainCommandsAt(view);
  const begin = commandAt(view, at);
  if (!begin || begin.readUInt16LE(4) !== DeltaCommand.BatchBegin || !hasValidCrc(begin)) return null;
  try {
    const { sources: count } = decodeBatchBegin(begin.subarray(COMMAND_HEADER_BYTES));
    at += begin.length;
    const sources: PredecessorRef[] = [];
    for (let i = 0; i < count; i++) {
      const command = commandAt(view, at);
      if (!command || command.readUInt16LE(4) !== DeltaCommand.BatchSource || !hasValidCrc(command)) return null;
      const source = decodeBatchSource(command.subarray(COMMAND_HEADER_BYTES));
      sources.push({ sourcePath: source.path, sourceSize: source.size, sourceSha256: source.sha256 });
      at += command.length;
    }
    return sources;
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

/**
 * The dictionary of the next batch, written while the current section decodes (docs/release-tool.md
 * "Delta artifacts", device side): the predecessor reads overlap the zstd decode and the receive instead of
 * stopping both. At most one is held; one that is not taken (the next batch turned out different, or the
 * rebuild failed first) is closed, and its failure, if any, is dropped: the batch that reads the same
 * sources again meets the same failure itself.
 */
export class DictionaryPrefetch {
  private pending: { sources: PredecessorRef[]; dictionary: Promise<number> } | null = null;
  /** batches whose dictionary was taken, and of those the ones written ahead */
  readonly stats = { taken: 0, prefetched: 0 };

  constructor(private readonly write: (sources: readonly PredecessorRef[]) => Promise<number>) {}

  /** Starts writing the dictionary of `sources` (dropping one held for other sources). */
  start(sources: PredecessorRef[]): void {
    if (this.pending && sameSources(this.pending.sources, sources)) return;
    this.discard();
    const dictionary = this.write(sources);
    dictionary.catch(() => undefined);
    this.pending = { sources, dictionary };
  }

  /** The descriptor of the dictionary of `sources`: the prefetched one when it is theirs, else written now. */
  take(sources: readonly PredecessorRef[]): Promise<number> {
    const pending = this.pending;
    this.pending = null;
    this.stats.taken += 1;
    if (pending && sameSources(pending.sources, sources)) {
      this.stats.prefetched += 1;
      return pending.dictionary;
    }
    if (pending) DictionaryPrefetch.close(pending.dictionary);
    return this.write(sources);
  }

  /** Closes what is held (the end of a rebuild, successful or not). */
  discard(): void {
    if (this.pending) DictionaryPrefetch.close(this.pending.dictionary);
    this.pending = null;
  }

  private static close(dictionary: Promise<number>): void {
    dictionary.then(
      (fd) => closeSync(fd),
      () => undefined,
    );
  }
}
