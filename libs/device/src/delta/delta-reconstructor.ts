import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { ErrorCode } from '@cowroot/protocol';
import { CommandError } from '../command-runner';
import { DeviceError } from '../device-error';
import { ByteReader } from './byte-reader';
import { DELTA_MAGIC, DeltaCommand, PatchBegin, WriteStub, decodePatchBegin, decodeWriteStub } from './delta-format';
import { locatePredecessor, verifyPredecessorContent } from './predecessor';
import {
  COMMAND_HEADER_BYTES,
  STREAM_HEADER_BYTES,
  SendCommand,
  SendStreamFormatError,
  hasValidCrc,
  joinWrite,
  parseCommandHeader,
  parseStreamHeader,
} from './send-stream';
import { StreamingCommand, StreamingProcess } from './streaming-command';

/** zstd's default decoder limit (2^27 = 128 MiB) is also our default cap of a patch window. */
export const DEFAULT_MAX_WINDOW_LOG = 27;

/** No btrfs command comes near this (v2 writes are ≤ 16 KiB + 128 KiB); a bigger length is corruption. */
const MAX_COMMAND_BYTES = 16 * 1024 * 1024;

export interface ReconstructOptions {
  /** root of the parent snapshot on this device (the predecessors are read from it) */
  parentRoot: string;
  /** size and sha256 of the plain stream, from the signed manifest */
  expected: { size: number; sha256: string };
  /** largest patch window accepted: bounds the memory of each patch decoder (2^log bytes) */
  maxWindowLog?: number;
  commands?: StreamingCommand;
}

function corrupt(message: string, cause?: unknown): DeviceError {
  return new DeviceError(ErrorCode.DeltaCorrupt, `delta artifact: ${message}`, { cause });
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

/**
 * Rebuilds the plain btrfs send stream from a delta stream (docs/agent.md §4.3), as a Readable to hand to
 * `btrfs receive`. Streaming throughout: a command at a time, and for each patch section one
 * `zstd -d --patch-from=<predecessor>` whose output becomes the section's WRITE commands (crc32c
 * recomputed) as it is decoded; memory is a few commands plus the stubs of one section. The plain END
 * is held back until the whole stream's size and sha256 match the manifest, so `btrfs receive` never
 * completes a subvolume from a wrong reconstruction: it fails, and the store deletes what it received.
 */
export class DeltaReconstructor {
  private readonly commands: StreamingCommand;
  private readonly maxWindowLog: number;

  constructor(private readonly options: ReconstructOptions) {
    this.commands = options.commands ?? new StreamingCommand();
    this.maxWindowLog = options.maxWindowLog ?? DEFAULT_MAX_WINDOW_LOG;
  }

  /** The plain stream rebuilt from `delta` (the uncompressed delta stream). */
  plainStream(delta: AsyncIterable<Buffer>, source: StreamingProcess | null = null): Readable {
    return Readable.from(this.rebuild(new ByteReader(delta), source), { objectMode: false, highWaterMark: 64 * 1024 });
  }

  /**
   * The plain stream of a compressed delta file given as a descriptor: `zstd -d` reads it directly, and
   * its exit status is checked before the END is released.
   */
  plainStreamFromFile(fd: number, compression: 'zstd' | 'none'): Readable {
    // a child reads the descriptor (uncompressed too: `cat`), never node, so the caller's descriptor is
    // only ever read by a process that has its own copy of it
    const unzstd =
      compression === 'zstd'
        ? this.commands.start('zstd', ['-d', '-c', '-q'], { stdinFd: fd })
        : this.commands.start('cat', [], { stdinFd: fd });
    const stream = this.plainStream(unzstd.stdout, unzstd);
    stream.once('close', () => unzstd.kill());
    return stream;
  }

  /** `zstd -d` of the artifact failed on its own (a cut or corrupt file): that is the cause to report. */
  private async decompressionFailure(source: StreamingProcess | null, killFirst: boolean): Promise<DeviceError | null> {
    if (!source) return null;
    if (killFirst) source.kill();
    const error = await source.done.then(
      () => null,
      (e: CommandError) => e,
    );
    return error && error.failure === 'exit' ? corrupt(`it does not decompress (${error.message})`, error) : null;
  }

  private async *rebuild(reader: ByteReader, source: StreamingProcess | null): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    let size = 0;
    const account = (parts: Buffer[]): Buffer[] => {
      for (const part of parts) {
        hash.update(part);
        size += part.length;
      }
      return parts;
    };
    try {
      const magic = await reader.read(DELTA_MAGIC.length);
      if (!magic.equals(DELTA_MAGIC)) {
        throw corrupt(`not a cowroot delta stream (starts with ${JSON.stringify(magic.toString('latin1'))})`);
      }
      const header = await this.exactly(reader, STREAM_HEADER_BYTES, 'the stream header');
      const version = this.guard(() => parseStreamHeader(header));
      yield* account([header]);
      for (;;) {
        const command = await this.readCommand(reader);
        const type = command.readUInt16LE(4);
        if (type === DeltaCommand.PatchBegin) {
          if (!hasValidCrc(command)) throw corrupt('crc mismatch in a patch section');
          const begin = this.guard(() => decodePatchBegin(command.subarray(COMMAND_HEADER_BYTES)));
          for await (const parts of this.patchSection(reader, begin, version)) yield* account(parts);
        } else if (type === DeltaCommand.WriteStub || type === DeltaCommand.PatchData) {
          throw corrupt('patch data outside a patch section');
        } else if (type === SendCommand.End) {
          account([command]);
          if (!(await reader.atEnd())) throw corrupt('bytes after the END command');
          const failed = await this.decompressionFailure(source, false);
          if (failed) throw failed;
          const sha256 = hash.digest('hex');
          if (size !== this.options.expected.size || sha256 !== this.options.expected.sha256) {
            throw new DeviceError(
              ErrorCode.DeltaMismatch,
              `the rebuilt stream is ${size} bytes with sha256 ${sha256}, the manifest says ${this.options.expected.size} bytes, ${this.options.expected.sha256}`,
            );
          }
          yield command;
          return;
        } else {
          yield* account([command]);
        }
      }
    } catch (error) {
      throw (await this.decompressionFailure(source, true)) ?? error;
    } finally {
      await reader.close().catch(() => undefined);
    }
  }

  private guard<T>(parse: () => T): T {
    try {
      return parse();
    } catch (error) {
      if (error instanceof SendStreamFormatError) throw corrupt(error.message, error);
      throw error;
    }
  }

  private async exactly(reader: ByteReader, length: number, what: string): Promise<Buffer> {
    const bytes = await reader.read(length);
    if (bytes.length !== length) throw corrupt(`truncated in ${what}`);
    return bytes;
  }

  /** One whole command (header + payload). EOF here is a truncated delta: the END never came. */
  private async readCommand(reader: ByteReader): Promise<Buffer> {
    const header = await reader.read(COMMAND_HEADER_BYTES);
    if (header.length === 0) throw corrupt('truncated: the stream ends before its END command');
    if (header.length !== COMMAND_HEADER_BYTES) throw corrupt('truncated in a command header');
    const { length } = parseCommandHeader(header);
    if (length > MAX_COMMAND_BYTES) throw corrupt(`a command claims ${length} bytes`);
    const payload = await this.exactly(reader, length, 'a command');
    return Buffer.concat([header, payload]);
  }

  private async *patchSection(reader: ByteReader, begin: PatchBegin, version: number): AsyncGenerator<Buffer[]> {
    if (begin.windowLog < 10 || begin.windowLog > this.maxWindowLog) {
      throw corrupt(`a patch needs a 2^${begin.windowLog} window, above the cap 2^${this.maxWindowLog}`);
    }
    if (begin.targetSize > 2 ** begin.windowLog || begin.stubs > begin.targetSize || begin.stubs === 0) {
      throw corrupt(`patch section for ${begin.sourcePath} has inconsistent sizes`);
    }
    const stubs: WriteStub[] = [];
    let total = 0;
    for (let i = 0; i < begin.stubs; i++) {
      const command = await this.readCommand(reader);
      if (command.readUInt16LE(4) !== DeltaCommand.WriteStub || !hasValidCrc(command)) {
        throw corrupt(`patch section for ${begin.sourcePath}: bad write stub ${i}`);
      }
      const stub = this.guard(() => decodeWriteStub(command.subarray(COMMAND_HEADER_BYTES)));
      total += stub.dataLength;
      stubs.push(stub);
    }
    if (total !== begin.targetSize) throw corrupt(`patch section for ${begin.sourcePath}: stub lengths disagree`);
    const source = await locatePredecessor(this.options.parentRoot, begin);
    // hashed while the section is decoded (another core, the page cache warm for zstd); nothing is final
    // before END, and a failure asks this check first, so a wrong parent still reads DELTA_BASE_MISMATCH
    const verified = verifyPredecessorContent(source, begin);
    verified.catch(() => undefined);
    try {
      if (begin.patchSize === 0) yield* this.copySection(source, begin, stubs, version);
      else yield* this.decodeSection(reader, source, begin, stubs, version);
    } catch (error) {
      await verified;
      throw error;
    }
    await verified;
  }

  private async *decodeSection(
    reader: ByteReader,
    source: string,
    begin: PatchBegin,
    stubs: WriteStub[],
    version: number,
  ): AsyncGenerator<Buffer[]> {
    const decoder = this.commands.start('zstd', [
      '-d',
      '-c',
      '-q',
      `--long=${begin.windowLog}`,
      `--patch-from=${source}`,
    ]);
    const feeding = this.feed(reader, begin, decoder).catch((error: unknown) => {
      decoder.kill();
      throw error;
    });
    feeding.catch(() => undefined);
    const decoded = new ByteReader(decoder.stdout);
    let finished = false;
    try {
      for (const stub of stubs) {
        const data = await decoded.read(stub.dataLength);
        if (data.length !== stub.dataLength) {
          await this.settle(feeding, decoder, begin);
          throw corrupt(`the patch for ${begin.sourcePath} decodes to fewer bytes than its writes carry`);
        }
        yield joinWrite(version, stub.prefix, data, stub.suffix, stub.crc);
      }
      if (!(await decoded.atEnd())) {
        throw corrupt(`the patch for ${begin.sourcePath} decodes to more bytes than its writes carry`);
      }
      await this.settle(feeding, decoder, begin);
      finished = true;
    } finally {
      if (!finished) {
        decoder.kill();
        await feeding.catch(() => undefined);
      }
    }
  }

  /**
   * A section without patch bytes: the data is the predecessor itself (a package upgrade rewrote the file
   * unchanged), read from the parent, no decoder; its size and sha256 are checked by patchSection.
   */
  private async *copySection(
    source: string,
    begin: PatchBegin,
    stubs: WriteStub[],
    version: number,
  ): AsyncGenerator<Buffer[]> {
    if (begin.targetSize !== begin.sourceSize)
      throw corrupt(`copy section for ${begin.sourcePath} has inconsistent sizes`);
    const reader = new ByteReader(createReadStream(source, { highWaterMark: 64 * 1024 }));
    try {
      for (const stub of stubs) {
        const data = await reader.read(stub.dataLength);
        if (data.length !== stub.dataLength)
          throw new DeviceError(
            ErrorCode.DeltaBaseMismatch,
            `predecessor ${begin.sourcePath} shrank while it was read`,
          );
        yield joinWrite(version, stub.prefix, data, stub.suffix, stub.crc);
      }
    } finally {
      await reader.close();
    }
  }

  /** PATCH_DATA commands of the section into the decoder, with backpressure. */
  private async feed(reader: ByteReader, begin: PatchBegin, decoder: StreamingProcess): Promise<void> {
    const stdin = decoder.stdin!;
    let fed = 0;
    while (fed < begin.patchSize) {
      const command = await this.readCommand(reader);
      if (command.readUInt16LE(4) !== DeltaCommand.PatchData || !hasValidCrc(command)) {
        throw corrupt(`patch section for ${begin.sourcePath}: bad patch data`);
      }
      const chunk = command.subarray(COMMAND_HEADER_BYTES);
      fed += chunk.length;
      if (fed > begin.patchSize) throw corrupt(`patch section for ${begin.sourcePath}: more patch data than announced`);
      await writeAll(stdin, chunk);
    }
    stdin.end();
  }

  /**
   * Both ends of a section's decoder: a bad delta seen by the feeder comes first (it killed the decoder),
   * then the decoder's own failure (a corrupt patch, a wrong predecessor), then anything else.
   */
  private async settle(feeding: Promise<void>, decoder: StreamingProcess, begin: PatchBegin): Promise<void> {
    const [fed, exited] = await Promise.allSettled([feeding, decoder.done]);
    if (fed.status === 'rejected' && !(fed.reason instanceof DecoderStopped)) throw fed.reason;
    if (exited.status === 'rejected') {
      const error = exited.reason as CommandError;
      throw corrupt(`the patch for ${begin.sourcePath} does not decode (${error.message})`, error);
    }
    if (fed.status === 'rejected') throw corrupt((fed.reason as Error).message);
  }
}
