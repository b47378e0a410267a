import { closeSync, createReadStream, realpathSync } from 'node:fs';
import { Writable } from 'node:stream';
import { ErrorCode } from '@cowroot/protocol';
import { CommandError } from '../command-runner';
import { DeviceError } from '../device-error';
import { ByteReader } from './byte-reader';
import {
  BatchBegin,
  DeltaCommand,
  PatchBegin,
  WriteStub,
  decodeBatchSource,
  MAX_COMMAND_BYTES,
  decodeWriteStub,
  isDeltaCommand,
  plainCommandsAt,
  zstdFrameHasChecksum,
} from './delta-format';
import { BatchHint, DictionaryPrefetch, LOOKAHEAD_BYTES, nextBatchHint, writeDictionary } from './dictionary-prefetch';
import {
  PredecessorRef,
  SMALL_PREDECESSOR_BYTES,
  locatePredecessor,
  readSmallPredecessor,
  verifyPredecessorContent,
} from './predecessor';
import { COMMAND_HEADER_BYTES, SendCommand, SendStreamFormatError, hasValidCrc, joinWrite } from './send-stream';
import { StreamingCommand, StreamingProcess } from './streaming-command';

export function corrupt(message: string, cause?: unknown): DeviceError {
  return new DeviceError(ErrorCode.DeltaCorrupt, `delta artifact: ${message}`, { cause });
}

export function guard<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof SendStreamFormatError) throw corrupt(error.message, error);
    throw error;
  }
}

/** The decoder closed its input: a consequence; its own exit status says why. */
class DecoderStopped extends Error {}

async function writeAll(stdin: Writable, chunk: Buffer): Promise<void> {
  if (stdin.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      stdin.off('drain', onDrain);
      stdin.off('close', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new DecoderStopped('the patch decoder stopped reading its input'));
    };
    stdin.on('drain', onDrain);
    stdin.on('close', onClose);
  });
}

export interface SectionContext {
  parentRoot: string;
  maxWindowLog: number;
  /** where a batch's dictionary (its predecessors, concatenated) is written, unlinked at once */
  scratchDir: string;
  commands: StreamingCommand;
  /** one whole command from the delta (header + payload) */
  readCommand(reader: ByteReader): Promise<Buffer>;
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

  constructor(private readonly context: SectionContext) {}

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

  private async readStub(reader: ByteReader, what: string, index: number): Promise<WriteStub> {
    const command = await this.context.readCommand(reader);
    if (command.readUInt16LE(4) !== DeltaCommand.WriteStub || !hasValidCrc(command)) {
      throw corrupt(`${what}: bad write stub ${index}`);
    }
    return guard(() => decodeWriteStub(command.subarray(COMMAND_HEADER_BYTES)));
  }

  /** PATCH_BEGIN: the runs of one file, patched against one predecessor (or copied from it). */
  async *patch(reader: ByteReader, begin: PatchBegin, version: number): AsyncGenerator<Buffer[]> {
    this.checkWindow(begin.windowLog, 'a patch');
    if (begin.targetSize > 2 ** begin.windowLog || begin.stubs > begin.targetSize || begin.stubs === 0) {
      throw corrupt(`patch section for ${begin.sourcePath} has inconsistent sizes`);
    }
    const what = `patch section for ${begin.sourcePath}`;
    const names = { section: what, patch: `the patch for ${begin.sourcePath}` };
    const stubs: WriteStub[] = [];
    let total = 0;
    for (let i = 0; i < begin.stubs; i++) {
      const stub = await this.readStub(reader, what, i);
      total += stub.dataLength;
      stubs.push(stub);
    }
    if (total !== begin.targetSize) throw corrupt(`${what}: stub lengths disagree`);
    const source = this.locate(begin);
    if (begin.patchSize === 0) {
      if (begin.targetSize !== begin.sourceSize)
        throw corrupt(`copy section for ${begin.sourcePath} has inconsistent sizes`);
      if (begin.sourceSize <= SMALL_PREDECESSOR_BYTES) {
        yield* this.copySmall(source, begin, stubs, version);
        return;
      }
    } else if (begin.sourceSize <= SMALL_PREDECESSOR_BYTES) {
      // checked before decoding: a wrong parent reads DELTA_BASE_MISMATCH, never a decoder's complaint
      readSmallPredecessor(source, begin);
      yield* this.decode(reader, source, begin, stubs, version, names);
      return;
    }
    if (begin.patchSize === 0) {
      // a large file copied: its bytes are the predecessor's, hashed while they stream (another core, the
      // page cache warm); nothing is final before END, and a failure asks this check first
      const verified = verifyPredecessorContent(source, begin);
      verified.catch(() => undefined);
      try {
        yield* this.copyLarge(source, begin, stubs, version);
      } catch (error) {
        await verified;
        throw error;
      }
      await verified;
      return;
    }
    // A patch's zstd frame carries a checksum of what it decodes to (the release tool writes --check):
    // a predecessor with other content makes the decode fail, and only then is it hashed, to say so
    // (DELTA_BASE_MISMATCH) rather than blame the patch. Hashing it always cost a second pass over it
    // beside the decoder's (48 MiB: 0.2 s of a core on the build machine). A frame without a checksum
    // (deltas of format 1) has its predecessor hashed beside the decode, as before.
    let verified: Promise<void> | null = null;
    const verify = () => (verified ??= verifyPredecessorContent(source, begin));
    const onFirst = (chunk: Buffer) => {
      if (!zstdFrameHasChecksum(chunk)) verify().catch(() => undefined);
    };
    try {
      yield* this.decode(reader, source, begin, stubs, version, names, onFirst);
    } catch (error) {
      await verify();
      throw error;
    }
    if (verified) await verified;
  }

  /**
   * BATCH_BEGIN (format 2): a stretch of the plain stream with many small files in it, decoded by one
   * zstd against their predecessors concatenated as dictionary; its output passes on as it comes.
   */
  async *batch(reader: ByteReader, begin: BatchBegin): AsyncGenerator<Buffer[]> {
    this.checkWindow(begin.windowLog, 'a batch');
    const what = 'batch section';
    const window = 2 ** begin.windowLog;
    if (begin.sources === 0 || begin.targetSize === 0 || begin.targetSize > window || begin.patchSize === 0) {
      throw corrupt(`${what} has inconsistent sizes`);
    }
    const sources: PredecessorRef[] = [];
    let sourceBytes = 0;
    for (let i = 0; i < begin.sources; i++) {
      const command = await this.context.readCommand(reader);
      if (command.readUInt16LE(4) !== DeltaCommand.BatchSource || !hasValidCrc(command)) {
        throw corrupt(`${what}: bad source ${i}`);
      }
      const source = guard(() => decodeBatchSource(command.subarray(COMMAND_HEADER_BYTES)));
      sourceBytes += source.size;
      if (sourceBytes > window) throw corrupt(`${what}: its sources exceed its window`);
      sources.push({ sourcePath: source.path, sourceSize: source.size, sourceSha256: source.sha256 });
    }
    // every source checked before anything is decoded: a wrong parent reads DELTA_BASE_MISMATCH (from
    // the decoder made ready while the last section decoded, when this batch was seen then)
    const decoder = await this.prefetch.take({ sources, windowLog: begin.windowLog });
    const patch = `the patch of a batch of ${sources.length} files`;
    yield* this.passDecoded(reader, decoder, begin, { section: what, patch });
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

  /** A large file rewritten unchanged: streamed from the parent, its sha256 checked beside (patch()). */
  private async *copyLarge(
    source: string,
    begin: PatchBegin,
    stubs: WriteStub[],
    version: number,
  ): AsyncGenerator<Buffer[]> {
    const reader = new ByteReader(createReadStream(source, { highWaterMark: 64 * 1024 }));
    try {
      for (const stub of stubs) {
        const data = await reader.read(stub.dataLength);
        if (data.length !== stub.dataLength) {
          throw new DeviceError(
            ErrorCode.DeltaBaseMismatch,
            `predecessor ${begin.sourcePath} shrank while it was read`,
          );
        }
        yield joinWrite(version, stub.prefix, data, stub.suffix, stub.crc);
      }
    } finally {
      await reader.close();
    }
  }

  /**
   * PATCH_DATA commands of the section into the decoder, with backpressure. Their crc is not checked
   * (unlike our other commands): it was the largest cost of a rebuild on a device (crc32c in JavaScript,
   * jitless), and it is redundant — the zstd frame carries a checksum of what it decodes to, which the
   * decoder checks, the artifact's sha256 was checked at download, and the rebuilt stream's before END.
   */
  private async feed(
    reader: ByteReader,
    patchSize: number,
    decoder: StreamingProcess,
    what: string,
    onFirst?: (chunk: Buffer) => void,
  ): Promise<void> {
    const stdin = decoder.stdin!;
    let fed = 0;
    while (fed < patchSize) {
      const command = await this.context.readCommand(reader);
      if (command.readUInt16LE(4) !== DeltaCommand.PatchData) {
        throw corrupt(`${what}: patch data expected, command ${command.readUInt16LE(4).toString(16)} found`);
      }
      const chunk = command.subarray(COMMAND_HEADER_BYTES);
      fed += chunk.length;
      if (fed > patchSize) throw corrupt(`${what}: more patch data than announced`);
      if (fed === chunk.length) onFirst?.(chunk);
      await writeAll(stdin, chunk);
    }
    stdin.end();
    // the reader is ours until the section ends: look past it for the next batch, whose predecessors are
    // then read, and whose decoder is started, while this section decodes
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
