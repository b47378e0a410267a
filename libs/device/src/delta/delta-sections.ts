import { closeSync, realpathSync } from 'node:fs';
import { CommandError } from '../command-runner';
import { ByteReader } from './byte-reader';
import {
  BatchBegin,
  DeltaFormat,
  PatchBegin,
  WriteStub,
  MAX_COMMAND_BYTES,
  decodeBatchBegin,
  decodePatchBegin,
  isDeltaCommand,
  plainCommandsAt,
} from './delta-format';
import { CopyListMethod, copyListWrites } from './copy-list';
import { BatchHint, DictionaryPrefetch, LOOKAHEAD_BYTES, nextBatchHint, writeDictionary } from './dictionary-prefetch';
import { copyLargePredecessor, patchedAgainstLarge } from './large-predecessor';
import { DeviceError } from '../device-error';
import {
  PredecessorRef,
  SMALL_PREDECESSOR_BYTES,
  locatePredecessor,
  readSmallPredecessor,
  verifyPredecessorContent,
} from './predecessor';
import {
  DecoderStopped,
  ReadCommand,
  UncheckedCommands,
  corrupt,
  feedPatchData,
  guard,
  readBatchSources,
  readWriteStubs,
} from './section-commands';
import { COMMAND_HEADER_BYTES, SendCommand, joinWrite } from './send-stream';
import { StreamingCommand, StreamingProcess } from './streaming-command';

export { corrupt, guard } from './section-commands';

export interface SectionContext {
  parentRoot: string;
  maxWindowLog: number;
  /** where a batch's dictionary (its predecessors, concatenated) is written, unlinked at once */
  scratchDir: string;
  commands: StreamingCommand;
  /** one whole command from the delta (header + payload) */
  readCommand: ReadCommand;
}

/**
 * The sections of a delta stream (docs/release-tool.md "Delta artifacts"), each rebuilt into the plain
 * WRITE commands it replaced, as arrays of buffers to write out in order.
 */
export class DeltaSections {
  private realRoot: string | null = null;
  private readonly insideDirs = new Set<string>();
  private readonly prefetch = new DictionaryPrefetch<StreamingProcess>(
    (hint) => this.startBatchDecoder(hint),
    (decoder) => decoder.kill(),
  );

  /**
   * Predecessors used without a hash (copy lists, large files rewritten unchanged, batch sources): a wrong
   * one gives bytes that fail the rebuilt stream's checks, and only then are they hashed (explainMismatch).
   */
  private readonly unhashed: PredecessorRef[] = [];

  constructor(private readonly context: SectionContext) {}

  /**
   * Why the rebuilt bytes are not the original's (btrfs receive refused a WRITE's crc32c, or the stream's
   * sha256 differs), when a predecessor copied from unhashed has other content: DELTA_BASE_MISMATCH
   * naming it; else null (the delta itself is wrong).
   */
  async explainMismatch(): Promise<DeviceError | null> {
    return this.mismatchAmong(this.unhashed);
  }

  /** The first of `refs` that is not in the parent as named (located and hashed anew), or null. */
  private async mismatchAmong(refs: readonly PredecessorRef[]): Promise<DeviceError | null> {
    for (const ref of refs) {
      try {
        await verifyPredecessorContent(this.locate(ref), ref);
      } catch (error) {
        if (error instanceof DeviceError) return error;
      }
    }
    return null;
  }

  /** batches rebuilt, and of those the ones whose dictionary was written ahead */
  get batchStats(): { taken: number; prefetched: number } {
    return { ...this.prefetch.stats };
  }

  /** The end of a rebuild: a dictionary written ahead for a batch that never came is closed. */
  close(): void {
    this.prefetch.discard();
  }

  private locate(ref: PredecessorRef): string {
    this.realRoot ??= realpathSync.native(this.context.parentRoot);
    return locatePredecessor(this.context.parentRoot, ref, this.realRoot, this.insideDirs);
  }

  private checkWindow(windowLog: number, what: string): void {
    if (windowLog < 10 || windowLog > this.context.maxWindowLog) {
      throw corrupt(`${what} needs a 2^${windowLog} window, above the cap 2^${this.context.maxWindowLog}`);
    }
  }

  /**
   * PATCH_BEGIN (`command`, its crc checked only if the section fails: UncheckedCommands): the runs of
   * one file, patched against one predecessor (or copied from it).
   */
  async *patch(reader: ByteReader, command: Buffer, version: number, format: DeltaFormat): AsyncGenerator<Buffer[]> {
    const unchecked = new UncheckedCommands('a patch section');
    unchecked.add(command);
    try {
      const begin = guard(() => decodePatchBegin(command.subarray(COMMAND_HEADER_BYTES)));
      yield* this.patchSection(reader, begin, version, format);
    } catch (error) {
      throw unchecked.explain(error);
    }
  }

  private async *patchSection(
    reader: ByteReader,
    begin: PatchBegin,
    version: number,
    format: DeltaFormat,
  ): AsyncGenerator<Buffer[]> {
    this.checkWindow(begin.windowLog, 'a patch');
    if (begin.targetSize > 2 ** begin.windowLog || begin.stubs > begin.targetSize || begin.stubs === 0) {
      throw corrupt(`patch section for ${begin.sourcePath} has inconsistent sizes`);
    }
    const what = `patch section for ${begin.sourcePath}`;
    const names = { section: what, patch: `the patch for ${begin.sourcePath}` };
    const { stubs, dataBytes } = await readWriteStubs(this.context.readCommand, reader, begin.stubs, format, what);
    if (dataBytes !== begin.targetSize) throw corrupt(`${what}: stub lengths disagree`);
    const source = this.locate(begin);
    const small = begin.sourceSize <= SMALL_PREDECESSOR_BYTES;
    if (begin.method === CopyListMethod) {
      if (format < 3) throw corrupt(`${what}: a copy list in a format ${format} delta stream`);
      if (begin.patchSize === 0) throw corrupt(`${what}: an empty copy list`);
      this.unhashed.push(begin);
      yield* copyListWrites(this.context.readCommand, reader, source, begin, stubs, version, what);
    } else if (begin.method) {
      throw corrupt(`${what}: unknown patch method ${begin.method}`);
    } else if (begin.patchSize === 0) {
      if (begin.targetSize !== begin.sourceSize)
        throw corrupt(`copy section for ${begin.sourcePath} has inconsistent sizes`);
      if (!small) this.unhashed.push(begin);
      yield* small
        ? this.copySmall(source, begin, stubs, version)
        : copyLargePredecessor(source, begin, stubs, version);
    } else if (small) {
      // checked before decoding: a wrong parent reads DELTA_BASE_MISMATCH, never a decoder's complaint
      readSmallPredecessor(source, begin);
      yield* this.decode(reader, source, begin, stubs, version, names);
    } else {
      yield* patchedAgainstLarge(source, begin, (onFirst) =>
        this.decode(reader, source, begin, stubs, version, names, onFirst),
      );
    }
  }

  /**
   * BATCH_BEGIN (format 2; `command`, its crc and its sources' checked only if the section fails): a
   * stretch of the plain stream with many small files in it, decoded by one zstd against their
   * predecessors concatenated as dictionary; its output passes on as it comes.
   */
  async *batch(reader: ByteReader, command: Buffer): AsyncGenerator<Buffer[]> {
    const unchecked = new UncheckedCommands('a batch section');
    unchecked.add(command);
    try {
      const begin = guard(() => decodeBatchBegin(command.subarray(COMMAND_HEADER_BYTES)));
      yield* this.batchSection(reader, begin, unchecked);
    } catch (error) {
      throw unchecked.explain(error);
    }
  }

  private async *batchSection(
    reader: ByteReader,
    begin: BatchBegin,
    unchecked: UncheckedCommands,
  ): AsyncGenerator<Buffer[]> {
    this.checkWindow(begin.windowLog, 'a batch');
    const what = 'batch section';
    const window = 2 ** begin.windowLog;
    if (begin.sources === 0 || begin.targetSize === 0 || begin.targetSize > window || begin.patchSize === 0) {
      throw corrupt(`${what} has inconsistent sizes`);
    }
    const read = this.context.readCommand;
    const sources = await readBatchSources(read, reader, begin.sources, window, unchecked, what);
    // every source located (type, size) before anything is decoded: a missing one reads
    // DELTA_BASE_MISMATCH (from the decoder made ready while the last section decoded, when this batch
    // was seen then); their content is hashed only when the batch fails (writeDictionary)
    const decoder = await this.prefetch.take({ sources, windowLog: begin.windowLog });
    this.unhashed.push(...sources);
    const patch = `the patch of a batch of ${sources.length} files`;
    try {
      yield* this.passDecoded(reader, decoder, begin, { section: what, patch });
    } catch (error) {
      // a source with other content fails the frame's checksum (or gives other commands): say so
      throw (await this.mismatchAmong(sources)) ?? error;
    }
  }

  /** A batch's dictionary written (its sources checked), and its decoder started on it. */
  private async startBatchDecoder(hint: BatchHint): Promise<StreamingProcess> {
    const dictionary = await writeDictionary(hint.sources, (source) => this.locate(source), this.context.scratchDir);
    try {
      return this.context.commands.start(
        'zstd',
        ['-d', '-c', '-q', `--long=${hint.windowLog}`, '--patch-from=/dev/fd/3'],
        { extraFds: [dictionary] },
      );
    } finally {
      // the child has its own copy of the descriptor; the file goes when it exits
      closeSync(dictionary);
    }
  }

  /** A batch's decoded output, whole plain commands only, exactly `targetSize` bytes of them. */
  private async *passDecoded(
    reader: ByteReader,
    decoder: StreamingProcess,
    begin: BatchBegin,
    names: { section: string; patch: string },
  ): AsyncGenerator<Buffer[]> {
    const feeding = this.feed(reader, begin.patchSize, decoder, names.section).catch((error: unknown) => {
      decoder.kill();
      throw error;
    });
    feeding.catch(() => undefined);
    const decoded = new ByteReader(decoder.stdout);
    let out = 0;
    let finished = false;
    const failed = async (why: string) => {
      await this.settle(feeding, decoder, names.patch);
      return corrupt(`${names.patch} ${why}`);
    };
    try {
      for (;;) {
        const view = await decoded.peek(COMMAND_HEADER_BYTES);
        if (view.length === 0) break;
        let take = plainCommandsAt(view);
        if (take === 0) {
          // one command across chunks, or one that must not be there
          if (view.length < COMMAND_HEADER_BYTES) throw await failed('decodes to a cut command');
          const type = view.readUInt16LE(4);
          const length = view.readUInt32LE(0);
          if (isDeltaCommand(type) || type === SendCommand.End || length > MAX_COMMAND_BYTES) {
            throw await failed(`decodes to a command that is not a plain one (${type}, ${length} bytes)`);
          }
          take = COMMAND_HEADER_BYTES + length;
        }
        out += take;
        if (out > begin.targetSize) throw await failed('decodes to more bytes than announced');
        const bytes = await decoded.read(take);
        if (bytes.length !== take) throw await failed('decodes to a cut command');
        yield [bytes];
      }
      if (out !== begin.targetSize) throw await failed('decodes to fewer bytes than announced');
      await this.settle(feeding, decoder, names.patch);
      finished = true;
    } finally {
      if (!finished) {
        decoder.kill();
        await feeding.catch(() => undefined);
      }
    }
  }

  /** One decoder for a file's section: PATCH_DATA in, each stub's data out in order, joined to its WRITE. */
  private async *decode(
    reader: ByteReader,
    source: string,
    begin: { windowLog: number; patchSize: number },
    stubs: readonly WriteStub[],
    version: number,
    names: { section: string; patch: string },
    onFirst?: (chunk: Buffer) => void,
  ): AsyncGenerator<Buffer[]> {
    const decoder = this.context.commands.start('zstd', [
      '-d',
      '-c',
      '-q',
      `--long=${begin.windowLog}`,
      `--patch-from=${source}`,
    ]);
    const feeding = this.feed(reader, begin.patchSize, decoder, names.section, onFirst).catch((error: unknown) => {
      decoder.kill();
      throw error;
    });
    feeding.catch(() => undefined);
    const decoded = new ByteReader(decoder.stdout);
    let finished = false;
    try {
      for (const item of stubs) {
        const data = await decoded.read(item.dataLength);
        if (data.length !== item.dataLength) {
          await this.settle(feeding, decoder, names.patch);
          throw corrupt(`${names.patch} decodes to fewer bytes than its writes carry`);
        }
        yield joinWrite(version, item.prefix, data, item.suffix, item.crc);
      }
      if (!(await decoded.atEnd())) {
        throw corrupt(`${names.patch} decodes to more bytes than its writes carry`);
      }
      await this.settle(feeding, decoder, names.patch);
      finished = true;
    } finally {
      if (!finished) {
        decoder.kill();
        await feeding.catch(() => undefined);
      }
    }
  }

  /** A small file rewritten unchanged: its predecessor read and checked in one go, cut into the writes. */
  private *copySmall(source: string, begin: PatchBegin, stubs: WriteStub[], version: number): Generator<Buffer[]> {
    const whole = readSmallPredecessor(source, begin);
    let at = 0;
    for (const stub of stubs) {
      yield joinWrite(version, stub.prefix, whole.subarray(at, at + stub.dataLength), stub.suffix, stub.crc);
      at += stub.dataLength;
    }
  }

  /**
   * The section's patch into its decoder (feedPatchData); then, the reader being ours until the section
   * ends, a look past it for the next batch, whose predecessors are then read, and whose decoder is
   * started, while this section decodes.
   */
  private async feed(
    reader: ByteReader,
    patchSize: number,
    decoder: StreamingProcess,
    what: string,
    onFirst?: (chunk: Buffer) => void,
  ): Promise<void> {
    await feedPatchData(this.context.readCommand, reader, patchSize, decoder.stdin!, what, onFirst);
    const next = nextBatchHint(await reader.peek(LOOKAHEAD_BYTES));
    if (next) this.prefetch.start(next);
  }

  /**
   * Both ends of a section's decoder: a bad delta seen by the feeder comes first (it killed the decoder),
   * then the decoder's own failure (a corrupt patch, a wrong predecessor), then anything else.
   */
  private async settle(feeding: Promise<void>, decoder: StreamingProcess, what: string): Promise<void> {
    const [fed, exited] = await Promise.allSettled([feeding, decoder.done]);
    if (fed.status === 'rejected' && !(fed.reason instanceof DecoderStopped)) throw fed.reason;
    if (exited.status === 'rejected') {
      const error = exited.reason as CommandError;
      throw corrupt(`${what} does not decode (${error.message})`, error);
    }
    if (fed.status === 'rejected') throw corrupt((fed.reason as Error).message);
  }
}
