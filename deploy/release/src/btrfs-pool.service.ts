import { mkdir, stat, statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CommandRunner, CommandSpec } from './command-runner.adapter';
import { ReleaseError, ReleaseErrorCode } from './release-error';
import { ReleaseRefArg } from './release-ref';
import { SubvolumeLink } from './subvolume-ancestry';

/** statfs(2) f_type of btrfs (linux/magic.h BTRFS_SUPER_MAGIC). */
const BTRFS_SUPER_MAGIC = 0x9123683e;

export interface SubvolumeInfo extends SubvolumeLink {
  path: string;
  receivedUuid: string | null;
  readOnly: boolean;
}

function uuidOrNull(value: string | undefined): string | null {
  return !value || value === '-' ? null : value;
}

/** Parses `btrfs subvolume show <path>` (the labelled form btrfs-progs prints). */
export function parseSubvolumeShow(path: string, output: string): SubvolumeInfo {
  const field = (label: string): string | undefined => {
    const match = new RegExp(`^\\s*${label}:\\s*(.*?)\\s*$`, 'm').exec(output);
    return match?.[1];
  };
  const uuid = uuidOrNull(field('UUID'));
  if (!uuid) throw new ReleaseError(ReleaseErrorCode.CommandFailed, `btrfs subvolume show ${path} printed no UUID`);
  return {
    path,
    uuid,
    parentUuid: uuidOrNull(field('Parent UUID')),
    receivedUuid: uuidOrNull(field('Received UUID')),
    readOnly: /\breadonly\b/.test(field('Flags') ?? ''),
  };
}

/** Parses `btrfs subvolume list -u -q <path>` into uuid links (paths there are relative to the fs top). */
export function parseSubvolumeList(output: string): SubvolumeLink[] {
  const links: SubvolumeLink[] = [];
  for (const line of output.split('\n')) {
    const parent = /\bparent_uuid (\S+)/.exec(line);
    const uuid = /(?:^|\s)uuid (\S+)/.exec(line);
    if (parent && uuid) links.push({ uuid: uuid[1], parentUuid: uuidOrNull(parent[1]) });
  }
  return links;
}

/**
 * The build host's btrfs pool: releases live as subvolumes `<pool>/releases/<name>-<version>`, read-only
 * once built. Every operation is a btrfs-progs call through the CommandRunner.
 */
export class BtrfsPool {
  private constructor(
    private readonly runner: CommandRunner,
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
    return new BtrfsPool(runner, root);
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
    return parseSubvolumeShow(path, await this.runner.run({ command: 'btrfs', args: ['subvolume', 'show', path] }));
  }

  /** Every subvolume of the filesystem with its parent link, for ancestry checks. */
  async links(): Promise<SubvolumeLink[]> {
    return parseSubvolumeList(
      await this.runner.run({ command: 'btrfs', args: ['subvolume', 'list', '-u', '-q', this.root] }),
    );
  }

  async createSubvolume(path: string): Promise<void> {
    await this.runner.run({ command: 'btrfs', args: ['subvolume', 'create', path] });
  }

  /** Writable snapshot: shares every extent with `source` until something is rewritten. */
  async snapshotWritable(source: string, path: string): Promise<void> {
    await this.runner.run({ command: 'btrfs', args: ['subvolume', 'snapshot', source, path] });
  }

  /**
   * Freezes a subvolume in place. Setting the flag (rather than taking a read-only snapshot of it) keeps
   * the subvolume's own parent_uuid, so the release chain base → release stays provable.
   */
  async makeReadOnly(path: string): Promise<void> {
    // send reads committed trees: write everything out before freezing
    await this.runner.run({ command: 'btrfs', args: ['filesystem', 'sync', path] });
    await this.runner.run({ command: 'btrfs', args: ['property', 'set', '-ts', path, 'ro', 'true'] });
    await this.runner.run({ command: 'btrfs', args: ['filesystem', 'sync', path] });
  }

  async deleteSubvolume(path: string): Promise<void> {
    await this.runner.run({ command: 'btrfs', args: ['subvolume', 'delete', '--commit-after', path] });
  }

  /** `btrfs send` of a read-only subvolume, full or against a read-only parent. */
  sendCommand(path: string, parentPath?: string): CommandSpec {
    return { command: 'btrfs', args: ['send', '-q', ...(parentPath ? ['-p', parentPath] : []), path] };
  }
}
