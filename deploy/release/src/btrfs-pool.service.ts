import { BtrfsAdapter, CommandRunner, StdinFilter, SubvolumeDetails } from '@cowroot/device';
import { mkdir, stat, statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ReleaseError, ReleaseErrorCode } from './release-error';
import { ReleaseRefArg } from './release-ref';
import { SubvolumeLink } from './subvolume-ancestry';

/** statfs(2) f_type of btrfs (linux/magic.h BTRFS_SUPER_MAGIC). */
const BTRFS_SUPER_MAGIC = 0x9123683e;

export interface SubvolumeInfo extends SubvolumeDetails {
  path: string;
}

/**
 * The build host's btrfs pool: releases live as subvolumes `<pool>/releases/<name>-<version>`, read-only
 * once built. The btrfs-progs calls and the parsing of their output are the device core's BtrfsAdapter;
 * this class adds what only the build host does (the pool layout, freezing a release, `btrfs send`).
 */
export class BtrfsPool {
  private constructor(
    private readonly btrfs: BtrfsAdapter,
    readonly root: string,
  ) {}

  /** Opens a pool: the path must be on btrfs; `releases/` is created on first use. */
  static async open(runner: CommandRunner, path: string): Promise<BtrfsPool> {
    const root = resolve(path);
    let type: number;
    try {
      type = (await statfs(root)).type;
    } catch (error) {
      throw new ReleaseError(
        ReleaseErrorCode.PoolNotBtrfs,
        `pool ${root} is not accessible (${(error as NodeJS.ErrnoException).code}); pass --pool <mounted btrfs path>`,
      );
    }
    if (type !== BTRFS_SUPER_MAGIC) {
      throw new ReleaseError(
        ReleaseErrorCode.PoolNotBtrfs,
        `pool ${root} is not on btrfs; mount a btrfs filesystem and pass its path as --pool`,
      );
    }
    await mkdir(join(root, 'releases'), { recursive: true });
    return new BtrfsPool(new BtrfsAdapter(runner), root);
  }

  releasePath(ref: ReleaseRefArg): string {
    return join(this.root, 'releases', ref.snapshotName);
  }

  async exists(path: string): Promise<boolean> {
    try {
      await stat(path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  /** A built release: must exist and be read-only (a rw one is a build that did not finish). */
  async release(ref: ReleaseRefArg): Promise<SubvolumeInfo> {
    const path = this.releasePath(ref);
    if (!(await this.exists(path))) {
      throw new ReleaseError(
        ReleaseErrorCode.UnknownRelease,
        `release ${ref} not found in the pool (no ${path}); build it first`,
      );
    }
    const info = await this.show(path);
    if (!info.readOnly) {
      throw new ReleaseError(
        ReleaseErrorCode.UnknownRelease,
        `release ${ref} at ${path} is not read-only (an interrupted build?); delete it with: btrfs subvolume delete ${path}`,
      );
    }
    return info;
  }

  async show(path: string): Promise<SubvolumeInfo> {
    return { path, ...(await this.btrfs.show(path)) };
  }

  /** Every subvolume of the filesystem with its parent link, for ancestry checks. */
  async links(): Promise<SubvolumeLink[]> {
    return this.btrfs.listSubvolumes(this.root);
  }

  async createSubvolume(path: string): Promise<void> {
    await this.btrfs.createSubvolume(path);
  }

  /** Writable snapshot: shares every extent with `source` until something is rewritten. */
  async snapshotWritable(source: string, path: string): Promise<void> {
    await this.btrfs.snapshot(source, path, { readOnly: false });
  }

  /**
   * Freezes a subvolume in place. Setting the flag (rather than taking a read-only snapshot of it) keeps
   * the subvolume's own parent_uuid, so the release chain base → release stays provable.
   */
  async makeReadOnly(path: string): Promise<void> {
    // send reads committed trees: write everything out before freezing
    await this.btrfs.syncFilesystem(path);
    await this.btrfs.setReadOnly(path);
    await this.btrfs.syncFilesystem(path);
  }

  async deleteSubvolume(path: string): Promise<void> {
    await this.btrfs.deleteSubvolume(path);
  }

  /** `btrfs send` of a read-only subvolume, full or against a read-only parent. */
  sendCommand(path: string, parentPath?: string): StdinFilter {
    return { command: 'btrfs', args: ['send', '-q', ...(parentPath ? ['-p', parentPath] : []), path] };
  }
}
