import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ByteReader, DEFAULT_MAX_WINDOW_LOG, DeltaFormat, StreamingCommand } from '@cowroot/device';
import { CommandRunner, StdinFilter } from '@cowroot/device';
import { DigestingStream } from '../digesting-stream';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { DeltaEncoding } from './delta-encoding';
import { PatchEncoder } from './patch-encoder';
import { BATCH_CAPS, BatchCaps, batchCapsWithin } from './patch-batch';
import { PredecessorFinder } from './predecessor-finder';

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
  /** the format written (its manifest says so: docs/protocol.md §8) */
  format: DeltaFormat;
  patchedFiles: number;
  /** files rewritten unchanged: sent as a reference to the predecessor, no patch */
  identicalFiles: number;
  /** bytes of WRITE data replaced by patches or references, and the patches' size */
  patchedDataBytes: number;
  patchBytes: number;
  /** batch sections written (each one decoder on the device for many small files) */
  batches: number;
  /** patch sections whose patch is a copy list rather than a zstd frame (format 3) */
  copyLists: number;
}

export interface DeltaWriterOptions {
  /** outer compression of the delta stream (as for the other artifacts) */
  zstdLevel?: number;
  /** level of each patch */
  patchLevel?: number;
  /** largest patch window (log2); files above half of it go as plain data */
  maxWindowLog?: number;
  /**
   * the format to write: 3 (the default: batches of small files, write runs, copy lists), 2 (batches,
   * one stub per write), 1 (per-file sections only); the device reads all three
   */
  format?: DeltaFormat;
  /** caps of a batch of small files (BATCH_CAPS by default), cut to fit maxWindowLog */
  batchCaps?: BatchCaps;
  commands?: StreamingCommand;
}

/**
 * Writes a delta artifact (docs/release-tool.md "Delta artifacts"): `btrfs send -p` is read command by
 * command (DeltaEncoding); the WRITEs of small files with a predecessor in the parent go into batches
 * patched together, each run of WRITEs to a larger one is buffered in a temp file (at most the patch
 * cap) and patched on its own (a zstd frame or a copy list, the smaller), each replaced by its section
 * when that is smaller; everything else is copied. The result goes through zstd to the artifact file, hashed and counted, while the plain
 * stream's size and sha256 are computed for the manifest.
 */
export class DeltaWriter {
  private readonly commands: StreamingCommand;
  private readonly encoder: PatchEncoder;
  private readonly maxWindowLog: number;
  private readonly zstdLevel: number;
  private readonly batchCaps: BatchCaps;
  readonly format: DeltaFormat;

  constructor(runner: CommandRunner, options: DeltaWriterOptions = {}) {
    this.format = options.format ?? 3;
    this.commands = options.commands ?? new StreamingCommand();
    this.encoder = new PatchEncoder(runner, options.patchLevel ?? 19);
    this.maxWindowLog = options.maxWindowLog ?? DEFAULT_MAX_WINDOW_LOG;
    this.zstdLevel = options.zstdLevel ?? 9;
    this.batchCaps = batchCapsWithin(options.batchCaps ?? BATCH_CAPS, this.maxWindowLog);
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
      const settings = {
        encoder: this.encoder,
        maxTargetBytes: this.maxTargetBytes,
        format: this.format,
        outerLevel: this.zstdLevel,
        batchCaps: this.batchCaps,
      };
      const encoding = new DeltaEncoding(settings, finder, request, work, zstd.stdin!);
      const stats = await encoding.run(new ByteReader(send.stdout));
      zstd.stdin!.end();
      await Promise.all([send.done, zstd.done, sink]);
      return { path: request.path, ...digest.result(), ...stats, format: this.format };
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

  private get maxTargetBytes(): number {
    return 2 ** (this.maxWindowLog - 1);
  }
}
