import { FileHandle, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PATCH_DATA_CHUNK, encodeBatchBegin, encodeBatchSource, encodePatchData } from '@cowroot/device';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { PatchEncoder, patchWindowLog } from './patch-encoder';
import { Predecessor } from './predecessor-finder';

/**
 * Caps of a batch (docs/release-tool.md "Delta artifacts"). A file up to `memberBytes` with a predecessor
 * up to `memberBytes` opens or joins a batch; the batch closes at `targetBytes` of plain stream or
 * `sourceBytes` of predecessors. Its window covers both, so the caps bound the memory of the device's
 * decoder (≈ sources + target: zstd holds the dictionary and a buffer of the frame's content).
 */
export interface BatchCaps {
  memberBytes: number;
  targetBytes: number;
  sourceBytes: number;
}

/**
 * The defaults: a 2^24 window at most, ≈ 8 MiB in the device's decoder. 8 MiB caps (a 2^25 window) were
 * measured on 2026-12-07 (docs/delta-benchmark-log.md): four batches of the Debian point release instead of
 * five, the same size, and no faster on the device (the decoders' start is not where its time goes).
 */
export const BATCH_CAPS: BatchCaps = {
  memberBytes: 1024 * 1024,
  targetBytes: 4 * 1024 * 1024,
  sourceBytes: 4 * 1024 * 1024,
};

/**
 * Caps that fit a window of 2^maxWindowLog: target and sources each at most a quarter of it (their sum
 * then needs at most half, what patchWindowLog's highbit + 1 gives), members at most each cap.
 */
export function batchCapsWithin(caps: BatchCaps, maxWindowLog: number): BatchCaps {
  const quarter = 2 ** (maxWindowLog - 2);
  const targetBytes = Math.min(caps.targetBytes, quarter);
  const sourceBytes = Math.min(caps.sourceBytes, quarter);
  return { targetBytes, sourceBytes, memberBytes: Math.min(caps.memberBytes, targetBytes, sourceBytes) };
}

export interface BatchOutcome {
  /** files in the batch, bytes of their data, and of the patch (0 when it went plain) */
  members: number;
  dataBytes: number;
  patchBytes: number;
}

/**
 * The open batch of the delta writer: a stretch of the plain stream in which small files with a
 * predecessor were written, compressed as a whole by one `zstd --patch-from` whose dictionary is their
 * predecessors concatenated. The device decodes it with one zstd and passes the output on as it comes,
 * instead of a decoder per file and a parse per command. The stretch waits in a temp file; close()
 * writes the batch section, or the stretch as it is when the patch does not pay.
 */
export class PatchBatch {
  private readonly sources: Predecessor[] = [];
  private readonly sourceIndex = new Set<string>();
  private sourceBytes = 0;
  private targetBytes = 0;
  private members = 0;
  private dataBytes = 0;
  private segment: FileHandle | null = null;

  constructor(
    private readonly parentRoot: string,
    private readonly dataPath: string,
    private readonly encoder: PatchEncoder,
    private readonly write: (parts: readonly Buffer[]) => Promise<void>,
    private readonly caps: BatchCaps = BATCH_CAPS,
  ) {}

  /** Whether a run of a file with this predecessor fits (its source not yet here counts against the cap). */
  fitsSource(predecessor: Predecessor): boolean {
    return this.sourceIndex.has(predecessor.path) || this.sourceBytes + predecessor.size <= this.caps.sourceBytes;
  }

  fits(bytes: number): boolean {
    return this.targetBytes + bytes <= this.caps.targetBytes;
  }

  /** A run starts in the batch: a new file, or the rest of one whose last batch was full. */
  startMember(predecessor: Predecessor, newFile: boolean): void {
    if (newFile) this.members += 1;
    if (this.sourceIndex.has(predecessor.path)) return;
    this.sourceIndex.add(predecessor.path);
    this.sources.push(predecessor);
    this.sourceBytes += predecessor.size;
  }

  /** A plain command of the stretch; `memberData`: the bytes of a member's file it carries. */
  async append(command: Buffer, memberData = 0): Promise<void> {
    this.segment ??= await open(this.dataPath, 'w+');
    await this.segment.write(command, 0, command.length, this.targetBytes);
    this.targetBytes += command.length;
    this.dataBytes += memberData;
  }

  async close(): Promise<BatchOutcome> {
    const outcome = { members: this.members, dataBytes: this.dataBytes, patchBytes: 0 };
    try {
      if (this.targetBytes === 0) return outcome;
      const sourcesPath = `${this.dataPath}.sources`;
      const patchPath = `${this.dataPath}.patch`;
      await this.concatenateSources(sourcesPath);
      const windowLog = patchWindowLog(this.sourceBytes + this.targetBytes, 0);
      const patchSize = await this.encoder.encode(sourcesPath, this.dataPath, patchPath, windowLog);
      // as for a single file: worth it only below the stretch compressed on its own
      const worth =
        this.sources.length > 0 &&
        (patchSize * 8 <= this.targetBytes ||
          patchSize < (await this.encoder.plain(this.dataPath, `${this.dataPath}.zst`)));
      if (worth) {
        await this.writeSection(windowLog, patchSize, patchPath);
        outcome.patchBytes = patchSize;
      } else {
        await this.copyOut(this.dataPath, this.targetBytes, (chunk) => this.write([chunk]));
      }
      return outcome;
    } finally {
      await this.segment?.close();
      for (const suffix of ['', '.sources', '.patch', '.zst']) await rm(`${this.dataPath}${suffix}`, { force: true });
    }
  }

  private async concatenateSources(path: string): Promise<void> {
    const out = await open(path, 'w');
    try {
      let at = 0;
      for (const source of this.sources) {
        const bytes = await readFile(join(this.parentRoot, source.path));
        if (bytes.length !== source.size) {
          throw new ReleaseError(ReleaseErrorCode.CommandFailed, `predecessor ${source.path} changed during the build`);
        }
        await out.write(bytes, 0, bytes.length, at);
        at += bytes.length;
      }
    } finally {
      await out.close();
    }
  }

  private async writeSection(windowLog: number, patchSize: number, patchPath: string): Promise<void> {
    await this.write(
      encodeBatchBegin({ sources: this.sources.length, targetSize: this.targetBytes, windowLog, patchSize }),
    );
    for (const source of this.sources) await this.write(encodeBatchSource(source));
    await this.copyOut(patchPath, patchSize, (chunk) => this.write(encodePatchData(chunk)));
  }

  /** `size` bytes of a file in PATCH_DATA_CHUNK pieces (each a fresh buffer: the writer may keep it). */
  private async copyOut(path: string, size: number, emit: (chunk: Buffer) => Promise<void>): Promise<void> {
    const file = await open(path, 'r');
    try {
      for (let position = 0; position < size;) {
        const chunk = Buffer.alloc(Math.min(PATCH_DATA_CHUNK, size - position));
        const { bytesRead } = await file.read(chunk, 0, chunk.length, position);
        if (bytesRead === 0) throw new ReleaseError(ReleaseErrorCode.CommandFailed, `${path} shrank`);
        position += bytesRead;
        await emit(chunk.subarray(0, bytesRead));
      }
    } finally {
      await file.close();
    }
  }
}
