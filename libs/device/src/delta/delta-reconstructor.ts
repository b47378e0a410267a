import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { ErrorCode } from '@cowroot/protocol';
import { CommandError } from '../command-runner';
import { DeviceError } from '../device-error';
import { collectYoungGarbage } from '../young-garbage';
import { ByteReader } from './byte-reader';
import {
  DELTA_MAGIC,
  DeltaCommand,
  MAX_COMMAND_BYTES,
  deltaFormatOf,
  isDeltaCommand,
  plainCommandsAt,
} from './delta-format';
import { DeltaSections, corrupt, guard } from './delta-sections';
import {
  COMMAND_HEADER_BYTES,
  STREAM_HEADER_BYTES,
  SendCommand,
  parseCommandHeader,
  parseStreamHeader,
} from './send-stream';
import { StreamingCommand, StreamingProcess } from './streaming-command';

/** zstd's default decoder limit (2^27 = 128 MiB) is also our default cap of a patch window. */
export const DEFAULT_MAX_WINDOW_LOG = 27;

/** What the rebuilt stream is written to `btrfs receive` in. */
const OUTPUT_CHUNK = 128 * 1024;
/** A single part at least this large is written as it is, not copied into a chunk. */
const DIRECT_BYTES = 32 * 1024;
/**
 * Rebuilt bytes between two young-generation collections (collectYoungGarbage): every decoder read and
 * every joined chunk is a fresh buffer that dies at once, and left to V8 they pile up to tens of MiB
 * before a scavenge, a peak the malloc arena keeps as RSS.
 */
const COLLECT_EVERY_BYTES = 2 * 1024 * 1024;

export interface ReconstructOptions {
  /** root of the parent snapshot on this device (the predecessors are read from it) */
  parentRoot: string;
  /** size and sha256 of the plain stream, from the signed manifest */
  expected: { size: number; sha256: string };
  /** largest patch window accepted: bounds the memory of each patch decoder (2^log bytes) */
  maxWindowLog?: number;
  /** where a batch's dictionary is written (unlinked at once); the pool's staging dir on a device */
  scratchDir?: string;
  commands?: StreamingCommand;
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
  private readonly sections: DeltaSections;

  constructor(private readonly options: ReconstructOptions) {
    this.commands = options.commands ?? new StreamingCommand();
    this.sections = new DeltaSections({
      parentRoot: options.parentRoot,
      maxWindowLog: options.maxWindowLog ?? DEFAULT_MAX_WINDOW_LOG,
      scratchDir: options.scratchDir ?? tmpdir(),
      commands: this.commands,
      readCommand: (reader) => this.readCommand(reader),
    });
  }

  /** Batches rebuilt so far, and how many of them found their dictionary written ahead. */
  get batches(): { taken: number; prefetched: number } {
    return this.sections.batchStats;
  }

  /**
   * What a failed receive of the rebuilt stream means. Bytes that are not the original's make `btrfs receive`
   * fail its crc32c check of a command before our sha256 check at END can (a copy list's output is checked by
   * nothing else on the way): that is the rebuild's failure, not the receive's. A predecessor with other
   * content is then the cause to name (DELTA_BASE_MISMATCH: a wrong parent), else DELTA_MISMATCH. Any other
   * error is returned as it is.
   */
  async explainReceiveFailure(error: unknown): Promise<unknown> {
    const crcRefused =
      error instanceof DeviceError && error.code === ErrorCode.ReceiveFailed && /crc32c? mismatch/i.test(error.message);
    if (!crcRefused) return error;
    return (
      (await this.sections.explainMismatch()) ??
      new DeviceError(
        ErrorCode.DeltaMismatch,
        `the rebuilt stream is not the one the manifest names: btrfs receive found a command whose crc32c does not match (${error.message})`,
        { cause: error },
      )
    );
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
    const out = new Coalescer();
    try {
      const magic = await reader.read(DELTA_MAGIC.length);
      const format = deltaFormatOf(magic);
      if (format === null) {
        throw corrupt(`not a cowroot delta stream (starts with ${JSON.stringify(magic.toString('latin1'))})`);
      }
      const header = await this.exactly(reader, STREAM_HEADER_BYTES, 'the stream header');
      const version = guard(() => parseStreamHeader(header));
      out.add([header]);
      for (;;) {
        // plain commands already buffered go on in one slice, unparsed: they are most of the stream
        const view = await reader.peek(COMMAND_HEADER_BYTES);
        const plain = plainCommandsAt(view);
        if (plain > 0) {
          const chunk = out.add([await reader.read(plain)]);
          if (chunk) yield chunk;
          continue;
        }
        const command = await this.readCommand(reader);
        const type = command.readUInt16LE(4);
        let section: AsyncGenerator<Buffer[]> | Generator<Buffer[]> | null = null;
        if (type === DeltaCommand.PatchBegin) {
          section = this.sections.patch(reader, command, version, format);
        } else if (type === DeltaCommand.BatchBegin) {
          if (format < 2) throw corrupt('a batch section in a format 1 delta stream');
          section = this.sections.batch(reader, command);
        } else if (isDeltaCommand(type)) {
          throw corrupt(`a delta command (${type.toString(16)}) outside a section`);
        } else if (type === SendCommand.End) {
          const rest = out.flush();
          if (rest) yield rest;
          if (!(await reader.atEnd())) throw corrupt('bytes after the END command');
          const failed = await this.decompressionFailure(source, false);
          if (failed) throw failed;
          const { size, sha256 } = out.result(command);
          if (size !== this.options.expected.size || sha256 !== this.options.expected.sha256) {
            const cause = await this.sections.explainMismatch();
            if (cause) throw cause;
            throw new DeviceError(
              ErrorCode.DeltaMismatch,
              `the rebuilt stream is ${size} bytes with sha256 ${sha256}, the manifest says ${this.options.expected.size} bytes, ${this.options.expected.sha256}`,
            );
          }
          yield command;
          return;
        } else {
          const chunk = out.add([command]);
          if (chunk) yield chunk;
        }
        if (section) {
          for await (const parts of section) {
            const chunk = out.add(parts);
            if (chunk) yield chunk;
          }
        }
      }
    } catch (error) {
      throw (await this.decompressionFailure(source, true)) ?? error;
    } finally {
      this.sections.close();
      await reader.close().catch(() => undefined);
    }
  }

  private async exactly(reader: ByteReader, length: number, what: string): Promise<Buffer> {
    const bytes = await reader.read(length);
    if (bytes.length !== length) throw corrupt(`truncated in ${what}`);
    return bytes;
  }

  /**
   * One whole command (header + payload): a view of the buffered bytes when it lies in one chunk (most
   * do), else a copy. EOF here is a truncated delta: the END never came.
   */
  private async readCommand(reader: ByteReader): Promise<Buffer> {
    const view = await reader.peek(COMMAND_HEADER_BYTES);
    if (view.length === 0) throw corrupt('truncated: the stream ends before its END command');
    if (view.length < COMMAND_HEADER_BYTES) throw corrupt('truncated in a command header');
    const { length } = parseCommandHeader(view);
    if (length > MAX_COMMAND_BYTES) throw corrupt(`a command claims ${length} bytes`);
    const whole = COMMAND_HEADER_BYTES + length;
    if (view.length >= whole) return reader.read(whole);
    const header = Buffer.from(await reader.read(COMMAND_HEADER_BYTES));
    const payload = await this.exactly(reader, length, 'a command');
    return Buffer.concat([header, payload]);
  }
}

/**
 * Gathers the rebuilt stream into chunks of OUTPUT_CHUNK bytes for `btrfs receive`'s pipe (one write per
 * chunk, not five per WRITE command), hashing and counting what it hands out, and collecting the young
 * garbage every COLLECT_EVERY_BYTES of it.
 */
class Coalescer {
  private readonly hash = createHash('sha256');
  private size = 0;
  private parts: Buffer[] = [];
  private pending = 0;
  private sinceCollect = 0;

  /** A chunk to write out once enough has gathered, else null. */
  add(parts: readonly Buffer[]): Buffer | null {
    // a whole rebuilt WRITE in one buffer (copy-list.ts) goes on as it is when nothing waits before it
    if (parts.length === 1 && this.pending === 0 && parts[0].length >= DIRECT_BYTES) {
      this.parts = [parts[0]];
      this.pending = parts[0].length;
      return this.flush();
    }
    for (const part of parts) {
      if (part.length === 0) continue;
      this.parts.push(part);
      this.pending += part.length;
    }
    return this.pending >= OUTPUT_CHUNK ? this.flush() : null;
  }

  flush(): Buffer | null {
    if (this.pending === 0) return null;
    // one part (a slice of plain commands) goes as it is; small ones are joined
    const chunk = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.pending);
    this.parts = [];
    this.pending = 0;
    this.hash.update(chunk);
    this.size += chunk.length;
    this.sinceCollect += chunk.length;
    if (this.sinceCollect >= COLLECT_EVERY_BYTES) {
      this.sinceCollect = 0;
      collectYoungGarbage();
    }
    return chunk;
  }

  /** Size and sha256 of everything handed out plus the END held back. */
  result(end: Buffer): { size: number; sha256: string } {
    this.hash.update(end);
    return { size: this.size + end.length, sha256: this.hash.digest('hex') };
  }
}
