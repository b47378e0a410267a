import { createHash } from 'node:crypto';
import { FileHandle, lstat, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ByteReader,
  COMMAND_HEADER_BYTES,
  DELTA_MAGIC,
  DEFAULT_MAX_WINDOW_LOG,
  PATCH_DATA_CHUNK,
  STREAM_HEADER_BYTES,
  SendCommand,
  StreamingCommand,
  WriteStub,
  encodePatchBegin,
  encodePatchData,
  encodeWriteStub,
  joinWrite,
  parseCommandHeader,
  parseStreamHeader,
  splitWrite,
} from '@cowroot/device';
import { CommandRunner, StdinFilter } from '@cowroot/device';
import { DigestingStream } from '../digesting-stream';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { PatchEncoder, patchWindowLog } from './patch-encoder';
import { Predecessor, PredecessorFinder } from './predecessor-finder';

export interface DeltaRequest {
  /** `btrfs send -p <parent> <release>` */
  send: StdinFilter;
  parentRoot: string;
  newRoot: string;
  path: string;
}

export interface WrittenDelta {
  path: string;
  size: number;
  sha256: string;
  /** the plain incremental stream the delta rebuilds to (uncompressed) */
  plain: { size: number; sha256: string };
  patchedFiles: number;
  /** files rewritten unchanged: sent as a reference to the predecessor, no patch */
  identicalFiles: number;
  /** bytes of WRITE data replaced by patches or references, and the patches' size */
  patchedDataBytes: number;
  patchBytes: number;
}

export interface DeltaWriterOptions {
  /** outer compression of the delta stream (as for the other artifacts) */
  zstdLevel?: number;
  /** level of each patch */
  patchLevel?: number;
  /** largest patch window (log2); files above half of it go as plain data */
  maxWindowLog?: number;
  commands?: StreamingCommand;
}

/** A run of consecutive WRITEs to one path: buffered on disk while it may become a patch. */
interface Run {
  path: string;
  predecessor: Predecessor | null;
  stubs: WriteStub[];
  data: FileHandle | null;
  dataPath: string;
  bytes: number;
}

async function writeAll(stdin: Writable, parts: readonly Buffer[]): Promise<void> {
  for (const part of parts) {
    if (!stdin.write(part)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          stdin.off('close', onClose);
          resolve();
        };
        const onClose = () => {
          stdin.off('drain', onDrain);
          reject(new ReleaseError(ReleaseErrorCode.CommandFailed, 'zstd stopped reading the delta stream'));
        };
        stdin.once('drain', onDrain);
        stdin.once('close', onClose);
      });
    }
  }
}

/**
 * Writes a delta artifact (docs/release-tool.md "Delta artifacts"): `btrfs send -p` is read command by
 * command; each run of WRITEs to a file with a predecessor in the parent is buffered in a temp file (at
 * most the patch cap), encoded with `zstd --patch-from`, and replaced by a patch section when that is
 * smaller; everything else is copied. The result goes through zstd to the artifact file, hashed and
 * counted, while the plain stream's size and sha256 are computed for the manifest.
 */
export class DeltaWriter {
  private readonly commands: StreamingCommand;
  private readonly encoder: PatchEncoder;
  private readonly maxWindowLog: number;
  private readonly zstdLevel: number;

  constructor(runner: CommandRunner, options: DeltaWriterOptions = {}) {
    this.commands = options.commands ?? new StreamingCommand();
    this.encoder = new PatchEncoder(runner, options.patchLevel ?? 19);
    this.maxWindowLog = options.maxWindowLog ?? DEFAULT_MAX_WINDOW_LOG;
    this.zstdLevel = options.zstdLevel ?? 9;
  }

  async write(request: DeltaRequest): Promise<WrittenDelta> {
    const handle = await open(request.path, 'wx').catch((error: NodeJS.ErrnoException) => {
      throw new ReleaseError(
        ReleaseErrorCode.OutputExists,
        `cannot create ${request.path} (${error.code ?? error.message})`,
      );
    });
    const work = await mkdtemp(join(tmpdir(), 'cowroot-delta-'));
    const send = this.commands.start(request.send.command, request.send.args);
    const zstd = this.commands.start('zstd', ['-q', `-${this.zstdLevel}`, '-T0', '-c', '-']);
    const digest = new DigestingStream();
    const sink = pipeline(zstd.stdout, digest, handle.createWriteStream());
    sink.catch(() => undefined);
    try {
      const finder = new PredecessorFinder(request.parentRoot, request.newRoot, 2 ** (this.maxWindowLog - 1));
      const stats = await new DeltaEncoding(this, finder, request, work, zstd.stdin!).run(new ByteReader(send.stdout));
      zstd.stdin!.end();
      await Promise.all([send.done, zstd.done, sink]);
      return { path: request.path, ...digest.result(), ...stats };
    } catch (error) {
      send.kill();
      zstd.kill();
      await Promise.allSettled([send.done, zstd.done, sink]);
      await handle.close().catch(() => undefined);
      await rm(request.path, { force: true });
      // a failing btrfs send explains itself better than the short stream it left us
      const sent = await send.done.then(
        () => null,
        (e: Error) => e,
      );
      const cause = sent ?? error;
      if (cause instanceof ReleaseError) throw cause;
      throw new ReleaseError(
        ReleaseErrorCode.CommandFailed,
        `writing delta ${request.path}: ${(cause as Error).message}`,
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** For DeltaEncoding: the shared patch encoder and caps. */
  get patchEncoder(): PatchEncoder {
    return this.encoder;
  }

  get maxTargetBytes(): number {
    return 2 ** (this.maxWindowLog - 1);
  }
}

/** One pass over one send stream (state of the runs and the counters). */
class DeltaEncoding {
  private readonly plainHash = createHash('sha256');
  private plainSize = 0;
  private version = 1;
  private runs = 0;
  private readonly stats = { patchedFiles: 0, identicalFiles: 0, patchedDataBytes: 0, patchBytes: 0 };

  constructor(
    private readonly writer: DeltaWriter,
    private readonly finder: PredecessorFinder,
    private readonly request: DeltaRequest,
    private readonly work: string,
    private readonly out: Writable,
  ) {}

  async run(reader: ByteReader): Promise<Omit<WrittenDelta, 'path' | 'size' | 'sha256'>> {
    await writeAll(this.out, [DELTA_MAGIC]);
    const header = await this.exactly(reader, STREAM_HEADER_BYTES);
    this.version = parseStreamHeader(header);
    this.account(header);
    await writeAll(this.out, [header]);
    let run: Run | null = null;
    for (;;) {
      const command = await this.readCommand(reader);
      this.account(command);
      const type = command.readUInt16LE(4);
      if (type === SendCommand.Write) {
        const write = splitWrite(command.subarray(COMMAND_HEADER_BYTES), this.version);
        if (!run || run.path !== write.path) {
          if (run) await this.finish(run);
          run = await this.start(write.path);
        }
        await this.add(run, command, write.prefix, write.data, write.suffix);
        continue;
      }
      if (run) await this.finish(run);
      run = null;
      await writeAll(this.out, [command]);
      if (type === SendCommand.End) break;
    }
    if (!(await reader.atEnd())) throw new ReleaseError(ReleaseErrorCode.CommandFailed, 'btrfs send wrote past END');
    return { plain: { size: this.plainSize, sha256: this.plainHash.digest('hex') }, ...this.stats };
  }

  private account(bytes: Buffer): void {
    this.plainHash.update(bytes);
    this.plainSize += bytes.length;
  }

  private async exactly(reader: ByteReader, length: number): Promise<Buffer> {
    const bytes = await reader.read(length);
    if (bytes.length !== length) {
      throw new ReleaseError(ReleaseErrorCode.CommandFailed, 'btrfs send stream ended before its END command');
    }
    return bytes;
  }

  private async readCommand(reader: ByteReader): Promise<Buffer> {
    const header = await this.exactly(reader, COMMAND_HEADER_BYTES);
    const payload = await this.exactly(reader, parseCommandHeader(header).length);
    return Buffer.concat([header, payload]);
  }

  private async start(path: string): Promise<Run> {
    const newSize = (await lstat(join(this.request.newRoot, path)).catch(() => null))?.size ?? 0;
    const predecessor = newSize <= this.writer.maxTargetBytes ? await this.finder.find(path, newSize) : null;
    const dataPath = join(this.work, `run-${++this.runs}.data`);
    return { path, predecessor, stubs: [], data: predecessor ? await open(dataPath, 'w+') : null, dataPath, bytes: 0 };
  }

  private async add(run: Run, command: Buffer, prefix: Buffer, data: Buffer, suffix: Buffer): Promise<void> {
    if (run.predecessor && run.bytes + data.length > this.writer.maxTargetBytes) await this.flushPlain(run);
    if (!run.predecessor || !run.data) {
      await writeAll(this.out, [command]);
      return;
    }
    await run.data.write(data, 0, data.length, run.bytes);
    run.stubs.push({
      prefix: Buffer.from(prefix),
      dataLength: data.length,
      suffix: Buffer.from(suffix),
      crc: command.readUInt32LE(6),
    });
    run.bytes += data.length;
  }

  /** The buffered WRITEs, rebuilt byte for byte; the rest of the run passes through. */
  private async flushPlain(run: Run): Promise<void> {
    let position = 0;
    for (const stub of run.stubs) {
      const data = Buffer.alloc(stub.dataLength);
      await run.data!.read(data, 0, stub.dataLength, position);
      position += stub.dataLength;
      await writeAll(this.out, joinWrite(this.version, stub.prefix, data, stub.suffix, stub.crc));
    }
    run.stubs = [];
    run.predecessor = null;
    await this.closeRun(run);
  }

  private async closeRun(run: Run): Promise<void> {
    await run.data?.close();
    run.data = null;
    await rm(run.dataPath, { force: true });
  }

  private async finish(run: Run): Promise<void> {
    const predecessor = run.predecessor;
    if (!predecessor || run.stubs.length === 0) return this.closeRun(run);
    if (run.bytes === predecessor.size && (await this.sha256Of(run)) === predecessor.sha256) {
      // rewritten unchanged: the device copies it from the parent, nothing to decode
      await this.writeSection(run, predecessor, patchWindowLog(predecessor.size, run.bytes), 0, null);
      this.stats.identicalFiles += 1;
      this.stats.patchedDataBytes += run.bytes;
      return this.closeRun(run);
    }
    const windowLog = patchWindowLog(predecessor.size, run.bytes);
    const patchPath = `${run.dataPath}.patch`;
    const encoder = this.writer.patchEncoder;
    const source = join(this.request.parentRoot, predecessor.path);
    const patchSize = await encoder.encode(source, run.dataPath, patchPath, windowLog);
    let worth = patchSize < run.bytes;
    // not an obvious win: compare with what the data costs compressed on its own
    if (worth && patchSize * 8 > run.bytes)
      worth = patchSize < (await encoder.plain(run.dataPath, `${run.dataPath}.zst`));
    if (!worth) {
      await rm(patchPath, { force: true });
      return this.flushPlain(run);
    }
    await this.writeSection(run, predecessor, windowLog, patchSize, patchPath);
    this.stats.patchedFiles += 1;
    this.stats.patchedDataBytes += run.bytes;
    this.stats.patchBytes += patchSize;
    await rm(patchPath, { force: true });
    await this.closeRun(run);
  }

  private async sha256Of(run: Run): Promise<string> {
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(PATCH_DATA_CHUNK * 4);
    for (let position = 0; position < run.bytes;) {
      const { bytesRead } = await run.data!.read(chunk, 0, Math.min(chunk.length, run.bytes - position), position);
      if (bytesRead === 0) break;
      hash.update(chunk.subarray(0, bytesRead));
      position += bytesRead;
    }
    return hash.digest('hex');
  }

  /** PATCH_BEGIN, the stubs, and the patch (none for a copy section). */
  private async writeSection(
    run: Run,
    predecessor: Predecessor,
    windowLog: number,
    patchSize: number,
    patchPath: string | null,
  ): Promise<void> {
    await writeAll(
      this.out,
      encodePatchBegin({
        sourcePath: predecessor.path,
        sourceSize: predecessor.size,
        sourceSha256: predecessor.sha256,
        targetSize: run.bytes,
        windowLog,
        stubs: run.stubs.length,
        patchSize,
      }),
    );
    for (const stub of run.stubs) await writeAll(this.out, encodeWriteStub(stub));
    if (!patchPath) return;
    const patch = await open(patchPath, 'r');
    try {
      const chunk = Buffer.alloc(PATCH_DATA_CHUNK);
      for (let position = 0; position < patchSize;) {
        const { bytesRead } = await patch.read(chunk, 0, chunk.length, position);
        if (bytesRead === 0) throw new ReleaseError(ReleaseErrorCode.CommandFailed, `patch ${patchPath} shrank`);
        position += bytesRead;
        await writeAll(this.out, encodePatchData(Buffer.from(chunk.subarray(0, bytesRead))));
      }
    } finally {
      await patch.close();
    }
  }
}
