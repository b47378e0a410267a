import { createHash } from 'node:crypto';
import { FileHandle, lstat, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  ByteReader,
  COMMAND_HEADER_BYTES,
  CopyListMethod,
  DeltaFormat,
  PATCH_DATA_CHUNK,
  STREAM_HEADER_BYTES,
  SendCommand,
  WriteStub,
  encodePatchBegin,
  deltaMagicOf,
  encodeCopyList,
  encodePatchData,
  encodeWriteRuns,
  encodeWriteStub,
  joinWrite,
  parseCommandHeader,
  parseStreamHeader,
  splitWrite,
} from '@cowroot/device';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import type { DeltaRequest, WrittenDelta } from './delta-writer.service';
import { diffCopyList } from './copy-list-differ';
import { BatchCaps, PatchBatch } from './patch-batch';
import { PatchEncoder, patchWindowLog } from './patch-encoder';
import { Predecessor, PredecessorFinder } from './predecessor-finder';

export interface EncodingSettings {
  encoder: PatchEncoder;
  /** largest run patched as one file (half the window) */
  maxTargetBytes: number;
  /** the format written: batches of small files from 2, write runs and copy lists from 3 */
  format: DeltaFormat;
  /** zstd level of the artifact as a whole (what a copy list is compressed with) */
  outerLevel: number;
  /** the caps of a batch, within the window (batchCapsWithin) */
  batchCaps: BatchCaps;
}

/** A run of consecutive WRITEs to one path: buffered on disk while it may become a patch. */
interface Run {
  path: string;
  predecessor: Predecessor | null;
  /** a small file: its writes go to the open batch, not to `data` */
  member: boolean;
  /** the batch its writes went to last (a full batch closes mid-run and the run goes on in the next) */
  batch?: PatchBatch;
  batched: boolean;
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

/** One pass over one send stream (state of the runs and the counters). */
export class DeltaEncoding {
  private readonly plainHash = createHash('sha256');
  private plainSize = 0;
  private version = 1;
  private runs = 0;
  private batch: PatchBatch | null = null;
  private readonly stats = {
    patchedFiles: 0,
    identicalFiles: 0,
    patchedDataBytes: 0,
    patchBytes: 0,
    batches: 0,
    copyLists: 0,
  };

  constructor(
    private readonly writer: EncodingSettings,
    private readonly finder: PredecessorFinder,
    private readonly request: DeltaRequest,
    private readonly work: string,
    private readonly out: Writable,
  ) {}

  async run(reader: ByteReader): Promise<Omit<WrittenDelta, 'path' | 'size' | 'sha256' | 'format'>> {
    await writeAll(this.out, [deltaMagicOf(this.writer.format)]);
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
      if (type === SendCommand.End) {
        await this.emit([command]);
        break;
      }
      await this.emitPlain(command);
    }
    if (!(await reader.atEnd())) throw new ReleaseError(ReleaseErrorCode.CommandFailed, 'btrfs send wrote past END');
    return { plain: { size: this.plainSize, sha256: this.plainHash.digest('hex') }, ...this.stats };
  }

  private account(bytes: Buffer): void {
    this.plainHash.update(bytes);
    this.plainSize += bytes.length;
  }

  /** Out to the delta stream, after the open batch (which comes first in stream order). */
  private async emit(parts: readonly Buffer[]): Promise<void> {
    await this.closeBatch();
    await writeAll(this.out, parts);
  }

  /** A plain command: part of the open batch's stretch while it fits, else out. */
  private async emitPlain(command: Buffer): Promise<void> {
    if (this.batch?.fits(command.length)) await this.batch.append(command);
    else await this.emit([command]);
  }

  private openBatch(): PatchBatch {
    this.batch ??= new PatchBatch(
      this.request.parentRoot,
      join(this.work, `batch-${++this.runs}.data`),
      this.writer.encoder,
      (parts) => writeAll(this.out, parts),
      this.writer.batchCaps,
    );
    return this.batch;
  }

  private async closeBatch(): Promise<void> {
    const batch = this.batch;
    if (!batch) return;
    this.batch = null;
    const outcome = await batch.close();
    if (outcome.patchBytes === 0) return;
    this.stats.batches += 1;
    this.stats.patchedFiles += outcome.members;
    this.stats.patchedDataBytes += outcome.dataBytes;
    this.stats.patchBytes += outcome.patchBytes;
  }

  /** The open batch, with room for a run of `predecessor` (closing a full one first). */
  private async batchFor(predecessor: Predecessor, bytes: number): Promise<PatchBatch> {
    const open = this.batch;
    if (open && !(open.fitsSource(predecessor) && open.fits(bytes))) {
      await this.closeBatch();
    }
    return this.openBatch();
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
    const member =
      this.writer.format >= 2 &&
      predecessor !== null &&
      newSize <= this.writer.batchCaps.memberBytes &&
      predecessor.size <= this.writer.batchCaps.memberBytes;
    const dataPath = join(this.work, `run-${++this.runs}.data`);
    const data = predecessor && !member ? await open(dataPath, 'w+') : null;
    return { path, predecessor, member, stubs: [], data, dataPath, bytes: 0, batched: false };
  }

  private async add(run: Run, command: Buffer, prefix: Buffer, data: Buffer, suffix: Buffer): Promise<void> {
    if (run.member) {
      const batch = await this.batchFor(run.predecessor!, command.length);
      // a new batch (the first, or one opened because the last was full) learns the run's source
      if (!run.batched || batch !== run.batch) batch.startMember(run.predecessor!, !run.batched);
      run.batched = true;
      run.batch = batch;
      await batch.append(command, data.length);
      return;
    }
    const stub = {
      prefix: Buffer.from(prefix),
      dataLength: data.length,
      suffix: Buffer.from(suffix),
      crc: command.readUInt32LE(6),
    };
    if (run.predecessor && run.bytes + data.length > this.writer.maxTargetBytes) await this.flushPlain(run);
    if (!run.predecessor || !run.data) {
      await this.emitPlain(command);
      return;
    }
    await run.data.write(data, 0, data.length, run.bytes);
    run.stubs.push(stub);
    run.bytes += data.length;
  }

  /** The buffered WRITEs, rebuilt byte for byte; the rest of the run passes through. */
  private async flushPlain(run: Run): Promise<void> {
    let position = 0;
    for (const stub of run.stubs) {
      const data = Buffer.alloc(stub.dataLength);
      await run.data!.read(data, 0, stub.dataLength, position);
      position += stub.dataLength;
      await this.emitPlain(Buffer.concat(joinWrite(this.version, stub.prefix, data, stub.suffix, stub.crc)));
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
    if (run.member || !predecessor || run.stubs.length === 0) return this.closeRun(run);
    if (run.bytes === predecessor.size && (await this.sha256Of(run)) === predecessor.sha256) {
      // rewritten unchanged: the device copies it from the parent, nothing to decode
      await this.writeSection(run, predecessor, patchWindowLog(predecessor.size, run.bytes), 0, null);
      this.stats.identicalFiles += 1;
      this.stats.patchedDataBytes += run.bytes;
      return this.closeRun(run);
    }
    const windowLog = patchWindowLog(predecessor.size, run.bytes);
    const patchPath = `${run.dataPath}.patch`;
    const encoder = this.writer.encoder;
    const source = join(this.request.parentRoot, predecessor.path);
    let patchSize = await encoder.encode(source, run.dataPath, patchPath, windowLog);
    /** what the patch costs in the artifact: a copy list is compressed there with the rest */
    let cost = patchSize;
    let method = 0;
    if (this.writer.format >= 3) {
      // the copy list instead when it is smaller (copy-list-differ.ts): scattered edits in a large file
      const list = diffCopyList(await readFile(source), await readFile(run.dataPath));
      if (list) {
        const listPath = `${run.dataPath}.list`;
        const bytes = encodeCopyList(list);
        await writeFile(listPath, bytes);
        const compressed = await encoder.compressedSize(listPath, this.writer.outerLevel);
        if (compressed < cost) {
          await rename(listPath, patchPath);
          [patchSize, cost, method] = [bytes.length, compressed, CopyListMethod];
        } else await rm(listPath, { force: true });
      }
    }
    let worth = cost < run.bytes;
    // not an obvious win: compare with what the data costs compressed on its own
    if (worth && cost * 8 > run.bytes) worth = cost < (await encoder.plain(run.dataPath, `${run.dataPath}.zst`));
    if (!worth) {
      await rm(patchPath, { force: true });
      return this.flushPlain(run);
    }
    await this.writeSection(run, predecessor, windowLog, patchSize, patchPath, method);
    if (method === CopyListMethod) this.stats.copyLists += 1;
    this.stats.patchedFiles += 1;
    this.stats.patchedDataBytes += run.bytes;
    this.stats.patchBytes += cost;
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
    method = 0,
  ): Promise<void> {
    await this.emit(
      encodePatchBegin({
        sourcePath: predecessor.path,
        sourceSize: predecessor.size,
        sourceSha256: predecessor.sha256,
        targetSize: run.bytes,
        windowLog,
        stubs: run.stubs.length,
        patchSize,
        method,
      }),
    );
    const stubs = this.writer.format >= 3 ? encodeWriteRuns(run.stubs) : run.stubs.map(encodeWriteStub);
    for (const command of stubs) await writeAll(this.out, command);
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
