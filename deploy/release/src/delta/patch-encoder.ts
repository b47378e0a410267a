import { rm, stat } from 'node:fs/promises';
import { CommandRunner } from '@cowroot/device';

/** The zstd window (log2) that covers both files: what zstd --patch-from picks itself (highbit + 1). */
export function patchWindowLog(sourceBytes: number, targetBytes: number): number {
  const largest = Math.max(sourceBytes, targetBytes, 1);
  return Math.max(10, Math.floor(Math.log2(largest)) + 1);
}

/**
 * `zstd --patch-from` on the build host (docs/release-tool.md "Delta artifacts"): the new data compressed
 * with the predecessor as dictionary, long-distance matching over a window covering both, so moved code
 * in a relinked binary still matches. The device decodes with the same --long.
 */
export class PatchEncoder {
  constructor(
    private readonly runner: CommandRunner,
    private readonly level = 19,
  ) {}

  async encode(source: string, target: string, out: string, windowLog: number): Promise<number> {
    await this.runner.run('zstd', [
      '-q',
      '-f',
      // the frame's checksum of its content: the device checks it as it decodes (its only check of the
      // patch bytes themselves before the rebuilt stream's sha256)
      '--check',
      `-${this.level}`,
      `--long=${windowLog}`,
      `--patch-from=${source}`,
      '-o',
      out,
      target,
    ]);
    return (await stat(out)).size;
  }

  /** The same data without a dictionary, what it would cost as plain data in the artifact. */
  async plain(target: string, out: string): Promise<number> {
    await this.runner.run('zstd', ['-q', '-f', `-${this.level}`, '-o', out, target]);
    return (await stat(out)).size;
  }

  /** The size of `path` compressed at `level` (a copy list, which the artifact's zstd compresses). */
  async compressedSize(path: string, level: number): Promise<number> {
    await this.runner.run('zstd', ['-q', '-f', `-${level}`, '-o', `${path}.zst`, path]);
    const { size } = await stat(`${path}.zst`);
    await rm(`${path}.zst`, { force: true });
    return size;
  }
}
