import {
  ArtifactKind,
  RELEASE_INDEX_FILE,
  RELEASE_INDEX_FORMAT,
  ReleaseIndex,
  ReleaseIndexArtifact,
  signManifest,
} from '@cowroot/protocol';
import { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buildManifestBytes } from '../artifact-manifest.builder';
import { ArtifactWriter } from '../artifact-writer.service';
import { CommandRunner, StdinFilter } from '@cowroot/device';
import { DigestingStream } from '../digesting-stream';
import { ReleaseError, ReleaseErrorCode, asReleaseError } from '../release-error';
import { ReleaseRefArg } from '../release-ref';
import { SigningKeys } from '../signing-keys';
import { CloneSourceScanner, ReceiveDumpChecker, StreamSubvolume } from './send-stream-check';

export interface SignRequest {
  release: ReleaseRefArg;
  keyPath: string;
  outDir: string;
  /** the full stream (btrfs send output, plain or zstd) */
  full: string;
  /** incremental streams and the release each applies to */
  deltas: Array<{ parent: ReleaseRefArg; stream: string }>;
  description?: string;
  zstdLevel?: number;
}

interface CheckedStream {
  path: string;
  compressed: boolean;
  subvolume: StreamSubvolume;
  parent: ReleaseRefArg | null;
  file: string;
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const BTRFS_MAGIC = Buffer.from('btrfs-stream\0', 'latin1');

/** Writes lines of a readable to `onLine` (the dump of a big rootfs never sits in memory whole). */
function lineSink(onLine: (line: string) => void): (stdout: Readable) => Promise<void> {
  return async (stdout) => {
    let rest = '';
    stdout.setEncoding('utf8');
    for await (const chunk of stdout as AsyncIterable<string>) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    }
    if (rest) onLine(rest);
  };
}

/**
 * `cowroot-release sign` (docs/factory.md "Streams from your own build system"): manifests, signatures and
 * release.json for send streams another build system made. Each stream is checked first, with
 * `btrfs receive --dump` (one subvolume, every path inside it) and by reading its CLONE commands (every
 * clone source is the stream's own subvolume or, incremental, its parent), so the key never vouches for a
 * stream that writes or clones outside the snapshot it creates.
 */
export class StreamSigner {
  constructor(
    private readonly runner: CommandRunner,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  async sign(request: SignRequest): Promise<{ indexPath: string; index: ReleaseIndex }> {
    const key = await SigningKeys.loadPrivate(request.keyPath);
    const outDir = resolve(request.outDir);
    const stem = request.release.fileStem;
    const streams: CheckedStream[] = [];
    streams.push(await this.check(request.full, null, `${stem}-full.btrfs.zst`));
    for (const delta of request.deltas) {
      const parentStem =
        delta.parent.name === request.release.name
          ? delta.parent.fileStem.slice(delta.parent.name.length + 1)
          : delta.parent.fileStem;
      streams.push(await this.check(delta.stream, delta.parent, `${stem}-from-${parentStem}.btrfs.zst`));
    }
    await mkdir(outDir, { recursive: true });
    const names = [
      RELEASE_INDEX_FILE,
      ...streams.flatMap((s) => [s.file, `${s.file}.manifest.json`, `${s.file}.manifest.sig`]),
    ];
    for (const name of names) {
      if (
        await stat(join(outDir, name)).then(
          () => true,
          () => false,
        )
      ) {
        throw new ReleaseError(
          ReleaseErrorCode.OutputExists,
          `${join(outDir, name)} already exists; use an empty --out directory for each release`,
        );
      }
    }
    const written: string[] = [];
    try {
      const createdAt = new Date();
      const artifacts: ReleaseIndexArtifact[] = [];
      const full = streams[0].subvolume;
      for (const stream of streams) {
        const target = join(outDir, stream.file);
        const { size, sha256 } = await this.place(stream, target, request.zstdLevel);
        written.push(target);
        artifacts.push(await this.writeManifest(outDir, stream, { size, sha256 }, request, createdAt, key, written));
        this.log(
          `signed ${stream.file} (${size} bytes, ${stream.subvolume.kind}, snapshot uuid ${stream.subvolume.uuid})`,
        );
      }
      const index: ReleaseIndex = {
        format: RELEASE_INDEX_FORMAT,
        name: request.release.name,
        version: request.release.version,
        description: request.description ?? null,
        snapshotUuid: full.uuid,
        createdAt: createdAt.toISOString(),
        artifacts,
      };
      const indexPath = join(outDir, RELEASE_INDEX_FILE);
      await this.writeNew(indexPath, `${JSON.stringify(index, null, 2)}\n`, written);
      return { indexPath, index };
    } catch (error) {
      await Promise.all(written.map((path) => rm(path, { force: true })));
      throw error;
    }
  }

  private decompress(path: string, compressed: boolean): StdinFilter {
    return compressed ? { command: 'zstd', args: ['-q', '-d', '-c', path] } : { command: 'cat', args: [path] };
  }

  /**
   * `producer | consumer` (or the producer alone) with stdout streamed to `sink`. A refusal the sink throws
   * is reported as itself, not as the command it stopped; a failed command as the release tool's error.
   */
  private async stream(
    producer: StdinFilter,
    consumer: StdinFilter | null,
    sink: (stdout: Readable) => Promise<void>,
  ): Promise<void> {
    try {
      if (consumer) await this.runner.run(consumer.command, consumer.args, { stdin: { producer }, stdoutSink: sink });
      else await this.runner.run(producer.command, producer.args, { stdoutSink: sink });
    } catch (error) {
      const refusal = (error as { cause?: unknown }).cause;
      if (refusal instanceof ReleaseError) throw refusal;
      throw asReleaseError(error) ?? error;
    }
  }

  /** Both checks of one stream; the kind must be the one asked for (full for --stream, incremental for --delta). */
  private async check(path: string, parent: ReleaseRefArg | null, file: string): Promise<CheckedStream> {
    const absolute = resolve(path);
    const magic = Buffer.alloc(BTRFS_MAGIC.length);
    try {
      const handle = await open(absolute, 'r');
      try {
        await handle.read(magic, 0, magic.length, 0);
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `stream ${absolute} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      );
    }
    const compressed = magic.subarray(0, 4).equals(ZSTD_MAGIC);
    if (!compressed && !magic.equals(BTRFS_MAGIC)) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `${absolute} is neither a btrfs send stream nor a zstd-compressed one`,
      );
    }
    const refuse = (why: string) =>
      new ReleaseError(ReleaseErrorCode.VerificationFailed, `stream ${absolute} is refused: ${why}`);
    const checker = new ReceiveDumpChecker();
    const checkLine = (line: string) => {
      try {
        checker.line(line);
      } catch (error) {
        throw refuse((error as Error).message);
      }
    };
    await this.stream(
      this.decompress(absolute, compressed),
      { command: 'btrfs', args: ['receive', '--dump'] },
      lineSink(checkLine),
    );
    let subvolume: StreamSubvolume;
    try {
      subvolume = checker.result().subvolume;
    } catch (error) {
      throw refuse((error as Error).message);
    }
    if (parent === null && subvolume.kind !== 'full')
      throw refuse('it is incremental; pass it as --delta <name@version>=<file>');
    if (parent !== null && subvolume.kind !== 'incremental')
      throw refuse(`it is a full stream, not an increment on ${parent}`);

    const scanner = new CloneSourceScanner();
    const scan = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        try {
          scanner.push(chunk);
          done();
        } catch (error) {
          done(error as Error);
        }
      },
    });
    if (compressed) {
      await this.stream(this.decompress(absolute, true), null, (stdout: Readable) => pipeline(stdout, scan));
    } else {
      await pipeline(createReadStream(absolute), scan);
    }
    scanner.finish();
    const allowed = new Set([subvolume.uuid, ...(subvolume.parentUuid ? [subvolume.parentUuid] : [])]);
    const foreign = [...scanner.cloneSources].filter((uuid) => !allowed.has(uuid));
    if (foreign.length > 0) {
      throw refuse(
        `it clones data from subvolume ${foreign.join(', ')}, which is neither the snapshot it creates${subvolume.parentUuid ? ' nor its parent' : ''}; make it with btrfs send without -c`,
      );
    }
    this.log(
      `checked ${absolute}: ${subvolume.kind} stream of ${subvolume.name}, every path and clone source inside it`,
    );
    return { path: absolute, compressed, subvolume, parent, file };
  }

  /** The artifact in --out: a copy of a zstd stream, or the plain stream compressed (manifests say zstd). */
  private async place(
    stream: CheckedStream,
    target: string,
    zstdLevel?: number,
  ): Promise<{ size: number; sha256: string }> {
    if (!stream.compressed) {
      const written = await new ArtifactWriter(this.runner, zstdLevel).write(
        { command: 'cat', args: [stream.path] },
        target,
      );
      return { size: written.size, sha256: written.sha256 };
    }
    const handle = await open(target, 'wx').catch((error: NodeJS.ErrnoException) => {
      throw new ReleaseError(ReleaseErrorCode.OutputExists, `cannot create ${target} (${error.code ?? error.message})`);
    });
    const digest = new DigestingStream();
    try {
      await pipeline(createReadStream(stream.path), digest, handle.createWriteStream());
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(target, { force: true });
      throw error;
    }
    return digest.result();
  }

  private async writeManifest(
    outDir: string,
    stream: CheckedStream,
    digest: { size: number; sha256: string },
    request: SignRequest,
    createdAt: Date,
    key: KeyObject,
    written: string[],
  ): Promise<ReleaseIndexArtifact> {
    const manifestFile = `${stream.file}.manifest.json`;
    const signatureFile = `${stream.file}.manifest.sig`;
    const bytes = buildManifestBytes({
      release: request.release,
      file: stream.file,
      size: digest.size,
      sha256: digest.sha256,
      snapshotUuid: stream.subvolume.uuid,
      parent: stream.parent ? { release: stream.parent, snapshotUuid: stream.subvolume.parentUuid as string } : null,
      createdAt,
      description: request.description,
    });
    await this.writeNew(join(outDir, manifestFile), bytes, written);
    await this.writeNew(join(outDir, signatureFile), `${signManifest(bytes, key)}\n`, written);
    return {
      kind: stream.parent ? ArtifactKind.Incremental : ArtifactKind.Full,
      file: stream.file,
      manifest: manifestFile,
      signature: signatureFile,
      size: digest.size,
      sha256: digest.sha256,
      parent: stream.parent ? { name: stream.parent.name, version: stream.parent.version } : null,
    };
  }

  private async writeNew(path: string, data: string | Buffer, written: string[]): Promise<void> {
    const handle = await open(path, 'wx');
    written.push(path);
    try {
      await handle.writeFile(data);
    } finally {
      await handle.close();
    }
  }
}
