import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ImageDiffs {
  xdelta: number;
  xdeltaSeconds: number;
  patchFrom: number;
  patchFromSeconds: number;
  /** read from `cache` (same images, same tools) rather than measured in this run */
  cached: boolean;
}

function seconds(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** What the figures depend on: both images (size, mtime) and both tools' versions. */
function keyOf(oldImage: string, newImage: string): string {
  const image = (path: string) => `${statSync(path).size}:${statSync(path).mtimeMs}`;
  // xdelta3 prints its version on stderr
  const version = (command: string, flag: string) => {
    const result = spawnSync(command, [flag], { encoding: 'utf8' });
    return `${result.stdout}${result.stderr}`.split('\n')[0].trim();
  };
  return [image(oldImage), image(newImage), version('zstd', '-V'), version('xdelta3', '-V')].join('|');
}

/**
 * `xdelta3 -9` and `zstd -19 --long --patch-from` of the two images, the whole-image baselines of the
 * delta artifact. `cache`: a file to keep them in next to cached images (the Debian case's patch-from
 * of two 170 MB tars takes minutes on a shared build machine, and gives the same bytes every time).
 */
export function imageDiffs(oldImage: string, newImage: string, work: string, cache?: string): ImageDiffs {
  const key = cache ? keyOf(oldImage, newImage) : '';
  if (cache && existsSync(cache)) {
    const kept = JSON.parse(readFileSync(cache, 'utf8')) as ImageDiffs & { key: string };
    if (kept.key === key) return { ...kept, cached: true };
  }
  const xd3 = join(work, 'images.xd3');
  const patch = join(work, 'images.patch.zst');
  const xdeltaSeconds = seconds(() => execFileSync('xdelta3', ['-9', '-e', '-f', '-s', oldImage, newImage, xd3]));
  const patchFromSeconds = seconds(() =>
    execFileSync('zstd', ['-q', '-f', '-19', '--long', `--patch-from=${oldImage}`, newImage, '-o', patch], {
      stdio: ['ignore', 'ignore', 'ignore'],
    }),
  );
  const diffs = {
    xdelta: statSync(xd3).size,
    xdeltaSeconds,
    patchFrom: statSync(patch).size,
    patchFromSeconds,
    cached: false,
  };
  if (cache) writeFileSync(cache, `${JSON.stringify({ ...diffs, key })}\n`);
  return diffs;
}
