import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, realpath } from 'node:fs/promises';
import { join, posix } from 'node:path';

export interface Predecessor {
  /** relative to the parent snapshot's root */
  path: string;
  size: number;
  sha256: string;
}

/** btrfs send's temporary name of an inode whose final name is not known yet (`o<ino>-<gen>-<n>`). */
const ORPHAN_NAME = /^o\d+-\d+-\d+$/;

/** A file name with its version digits masked: `libzstd.so.1.5.5` and `libzstd.so.1.5.4` → `libzstd.so.#.#.#`. */
export function versionlessName(name: string): string {
  return name.replace(/\d+/g, '#');
}

/**
 * The file of the parent release a changed file of the new release most likely grew from
 * (docs/release-tool.md "Delta artifacts"): the same path, else — a package upgrade that renamed a
 * versioned file — a file in the same directory whose name differs only in its digits and which the new
 * release no longer has (`libzstd.so.1.5.4` → `libzstd.so.1.5.5`), the closest in size if several.
 * Only regular files qualify. A wrong guess costs bytes, never correctness: the device rebuilds exactly
 * the data of the new file from whatever predecessor the patch names, and checks it.
 */
export class PredecessorFinder {
  private readonly cache = new Map<string, Promise<Predecessor | null>>();

  constructor(
    private readonly parentRoot: string,
    private readonly newRoot: string,
    /** predecessors larger than this are not used: the device would need a larger patch window */
    private readonly maxBytes: number,
  ) {}

  find(path: string, newSize: number): Promise<Predecessor | null> {
    let found = this.cache.get(path);
    if (!found) {
      found = this.lookUp(path, newSize);
      this.cache.set(path, found);
    }
    return found;
  }

  private async lookUp(path: string, newSize: number): Promise<Predecessor | null> {
    if (path.split('/').some((part) => part === '..' || part === '' || ORPHAN_NAME.test(part))) return null;
    const same = await this.regularSize(join(this.parentRoot, path));
    if (same !== null) return this.describe(path, same);
    const dir = posix.dirname(path);
    const name = posix.basename(path);
    const pattern = versionlessName(name);
    if (pattern === name) return null;
    const siblings = await readdir(join(this.parentRoot, dir)).catch(() => [] as string[]);
    let best: { path: string; size: number } | null = null;
    for (const sibling of siblings) {
      if (sibling === name || versionlessName(sibling) !== pattern) continue;
      const candidate = dir === '.' ? sibling : `${dir}/${sibling}`;
      // still in the new release: it is not what this file replaced
      if ((await lstat(join(this.newRoot, candidate)).catch(() => null)) !== null) continue;
      const size = await this.regularSize(join(this.parentRoot, candidate));
      if (size === null) continue;
      if (!best || Math.abs(size - newSize) < Math.abs(best.size - newSize)) best = { path: candidate, size };
    }
    return best ? this.describe(best.path, best.size) : null;
  }

  private async regularSize(absolute: string): Promise<number | null> {
    const info = await lstat(absolute).catch(() => null);
    if (!info?.isFile() || info.size === 0 || info.size > this.maxBytes) return null;
    // a directory on the way that is a symlink would make the device read outside the parent: refuse
    const [real, root] = await Promise.all([realpath(absolute), realpath(this.parentRoot)]);
    return real.startsWith(`${root}/`) ? info.size : null;
  }

  private async describe(path: string, size: number): Promise<Predecessor> {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(join(this.parentRoot, path))) hash.update(chunk as Buffer);
    return { path, size, sha256: hash.digest('hex') };
  }
}
