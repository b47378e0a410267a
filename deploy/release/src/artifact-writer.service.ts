import { CommandRunner, StdinFilter } from '@cowroot/device';
import { open, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { DigestingStream } from './digesting-stream';
import { ReleaseError, ReleaseErrorCode } from './release-error';

export interface WrittenArtifact {
  path: string;
  size: number;
  sha256: string;
}

/** Writes one compressed send stream: `<send> | zstd`, hashed and counted while it goes to disk. */
export class ArtifactWriter {
  constructor(
    private readonly runner: CommandRunner,
    /** zstd level; 19 is smaller but slow on a build host with few cores */
    private readonly zstdLevel = 9,
  ) {}

  async write(send: StdinFilter, path: string): Promise<WrittenArtifact> {
    // 'wx': never clobber an artifact that may already be published
    const handle = await open(path, 'wx').catch((error: NodeJS.ErrnoException) => {
      throw new ReleaseError(ReleaseErrorCode.OutputExists, `cannot create ${path} (${error.code ?? error.message})`);
    });
    const digest = new DigestingStream();
    try {
      // send → zstd over an OS pipe; a failing send fails the call even though zstd saw a clean end
      await this.runner.run('zstd', ['-q', `-${this.zstdLevel}`, '-T0', '-c', '-'], {
        stdin: { producer: send },
        stdoutSink: (compressed) => pipeline(compressed, digest, handle.createWriteStream()),
      });
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(path, { force: true });
      throw error;
    }
    return { path, ...digest.result() };
  }
}
