import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BtrfsAdapter } from '../btrfs.adapter';
import { CommandRunner } from '../command-runner';

export interface BuiltRelease {
  name: string;
  /** the read-only snapshot on the build filesystem */
  path: string;
  /** its UUID: what a device that receives it stores as received_uuid (the manifest's snapshotUuid) */
  uuid: string;
}

/** Content of a file in a release tree; null removes the file from the parent's tree. */
export type TreeContent = Record<string, string | Buffer | null>;

/**
 * Plays the release build host in tests: trees as subvolumes on a btrfs of its own (a separate
 * filesystem from the device's, so `btrfs receive` cannot find a parent by its original uuid), read-only
 * snapshots of them, and full or incremental `btrfs send` streams written to files.
 */
export class ReleaseBuilder {
  private readonly btrfs: BtrfsAdapter;

  constructor(
    private readonly mount: string,
    private readonly outDir: string,
    private readonly runner: CommandRunner = new CommandRunner(),
  ) {
    this.btrfs = new BtrfsAdapter(runner);
  }

  /** A release tree: new, or a rw snapshot of `parent`'s tree with `files` applied; then a ro snapshot. */
  async build(name: string, files: TreeContent, parent?: BuiltRelease): Promise<BuiltRelease> {
    await mkdir(join(this.mount, 'trees'), { recursive: true });
    await mkdir(join(this.mount, 'releases'), { recursive: true });
    const tree = join(this.mount, 'trees', name);
    if (parent) await this.btrfs.snapshot(parent.path, tree, { readOnly: false });
    else await this.btrfs.createSubvolume(tree);
    for (const [file, content] of Object.entries(files)) {
      const target = join(tree, file);
      if (content === null) {
        await rm(target, { force: true });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    }
    const path = join(this.mount, 'releases', name);
    await this.btrfs.snapshot(tree, path, { readOnly: true });
    const { uuid } = await this.btrfs.show(path);
    return { name, path, uuid };
  }

  /** `btrfs send [-p parent] -f <outDir>/<name>.stream`; returns the stream file. */
  async send(release: BuiltRelease, parent?: BuiltRelease): Promise<string> {
    await mkdir(this.outDir, { recursive: true });
    const file = join(this.outDir, `${release.name}${parent ? `-from-${parent.name}` : ''}.stream`);
    await this.runner.run('btrfs', ['send', '-q', ...(parent ? ['-p', parent.path] : []), '-f', file, release.path]);
    return file;
  }
}
