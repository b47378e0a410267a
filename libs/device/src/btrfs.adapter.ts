import { readdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ErrorCode } from '@cowroot/protocol';
import { CommandError, CommandRunner, StdinFile } from './command-runner';
import { DeviceError } from './device-error';
import {
  SubvolumeDetails,
  SubvolumeListEntry,
  parseFreeBytes,
  parseReceivedName,
  parseSubvolumeList,
  parseSubvolumeShow,
} from './btrfs-output.parser';

export interface Subvolume extends SubvolumeListEntry {
  readOnly: boolean;
}

/**
 * What `btrfs receive` reads: a Readable (piped through Node), or a verified file whose descriptor
 * becomes the command's stdin directly (as fast as `btrfs receive -f`), optionally through a filter
 * such as `zstd -d` connected by an OS pipe (as fast as the same shell pipeline).
 */
export type ReceiveSource = Readable | StdinFile;

export interface ReceiveOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

const DISK_FULL = /No space left on device|ENOSPC/i;
const PARENT_MISSING = /cannot find parent subvolume/i;

/**
 * Turns a failed btrfs call into a DeviceError with a protocol code: a full pool is DISK_FULL whatever
 * the operation, everything else gets the operation's own code.
 */
function toDeviceError(error: unknown, code: ErrorCode, what: string): DeviceError {
  if (error instanceof DeviceError) return error;
  if (error instanceof CommandError) {
    if (error.failure === 'aborted') return new DeviceError(ErrorCode.Canceled, `${what}: canceled`, { cause: error });
    if (error.failure === 'stdin' && error.cause instanceof DeviceError) return error.cause;
    if (DISK_FULL.test(error.stderrTail)) {
      return new DeviceError(ErrorCode.DiskFull, `${what}: no space left in the btrfs pool (${error.message})`, {
        cause: error,
      });
    }
    return new DeviceError(code, `${what}: ${error.message}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new DeviceError(code, `${what}: ${message}`, { cause: error });
}

/** btrfs-progs behind methods; every call is `btrfs` with an argument array through the CommandRunner. */
export class BtrfsAdapter {
  constructor(private readonly runner: CommandRunner = new CommandRunner()) {}

  private async btrfs(args: string[], code: ErrorCode, what: string): Promise<string> {
    try {
      return (await this.runner.run('btrfs', args)).stdout;
    } catch (error) {
      throw toDeviceError(error, code, what);
    }
  }

  /**
   * Every subvolume of the filesystem mounted at `mount` (which must be the top level, subvolid=5, so
   * paths are relative to it). The read-only flag comes from a second listing with `-r`, which is cheaper
   * than one `subvolume show` per subvolume; a subvolume made between the two calls reads as rw.
   */
  async listSubvolumes(mount: string): Promise<Subvolume[]> {
    const all = parseSubvolumeList(
      await this.btrfs(['subvolume', 'list', '-u', '-q', '-R', mount], ErrorCode.Internal, 'listing subvolumes'),
    );
    const readOnly = new Set(
      parseSubvolumeList(
        await this.btrfs(
          ['subvolume', 'list', '-u', '-q', '-R', '-r', mount],
          ErrorCode.Internal,
          'listing subvolumes',
        ),
      ).map((entry) => entry.id),
    );
    return all.map((entry) => ({ ...entry, readOnly: readOnly.has(entry.id) }));
  }

  async show(path: string): Promise<SubvolumeDetails> {
    return parseSubvolumeShow(await this.btrfs(['subvolume', 'show', path], ErrorCode.Internal, `reading ${path}`));
  }

  /** The id of the subvolume that contains `path` (5 = the top level). */
  async rootId(path: string): Promise<number> {
    const output = await this.btrfs(
      ['inspect-internal', 'rootid', path],
      ErrorCode.Internal,
      `reading the subvolume of ${path}`,
    );
    return Number(output.trim());
  }

  async createSubvolume(path: string): Promise<void> {
    await this.btrfs(['subvolume', 'create', path], ErrorCode.Internal, `creating subvolume ${path}`);
  }

  async snapshot(source: string, destination: string, options: { readOnly: boolean }): Promise<void> {
    const args = ['subvolume', 'snapshot', ...(options.readOnly ? ['-r'] : []), source, destination];
    await this.btrfs(args, ErrorCode.Internal, `snapshotting ${source} to ${destination}`);
  }

  /**
   * Deletes and waits for the transaction to commit, so the space accounting reflects it afterwards.
   * `commit: false` leaves the unlink to the next commit (a crash before it brings the subvolume back).
   */
  async deleteSubvolume(path: string, options: { commit?: boolean } = {}): Promise<void> {
    const commit = options.commit === false ? [] : ['--commit-after'];
    await this.btrfs(['subvolume', 'delete', ...commit, path], ErrorCode.Internal, `deleting ${path}`);
  }

  /** Writes back everything dirty and commits the transaction (`btrfs filesystem sync`). */
  async syncFilesystem(mount: string): Promise<void> {
    await this.btrfs(['filesystem', 'sync', mount], ErrorCode.Internal, `committing ${mount}`);
  }

  /**
   * Waits until the cleaner has really freed the space of deleted subvolumes (`--commit-after` only
   * waits for the commit that unlinks them), so free space reads right afterwards.
   */
  async waitForDeletions(mount: string): Promise<void> {
    await this.btrfs(['subvolume', 'sync', mount], ErrorCode.Internal, 'waiting for deleted subvolumes');
    // the cleaner's frees become visible (statfs, usage) only with the next transaction commit
    await this.syncFilesystem(mount);
  }

  /**
   * Only ro → true is used by cowroot. Flipping a received subvolume back to rw would make btrfs-progs
   * refuse (and, forced, clear received_uuid), so it is not offered.
   */
  async setReadOnly(path: string): Promise<void> {
    await this.btrfs(['property', 'set', '-ts', path, 'ro', 'true'], ErrorCode.Internal, `making ${path} read-only`);
  }

  /**
   * `btrfs receive -e <directory>` with `source` on stdin; returns the name of the subvolume it made in
   * `directory`. On failure btrfs leaves a partial rw subvolume without received_uuid behind: the caller
   * (SnapshotStore) receives into a directory of its own and deletes it. Errors: DISK_FULL, PARENT_MISSING
   * (incremental stream whose parent received_uuid is not on the device), CANCELED, else RECEIVE_FAILED.
   */
  async receive(source: ReceiveSource, directory: string, options: ReceiveOptions = {}): Promise<string> {
    let output: string;
    try {
      const result = await this.runner.run('btrfs', ['receive', '-e', directory], {
        stdin: source,
        signal: options.signal,
        timeoutMs: options.timeoutMs,
      });
      // btrfs-progs 6.x prints "At snapshot" (incremental) on stdout and "At subvol" (full) on stderr
      output = `${result.stdout}\n${result.stderr}`;
    } catch (error) {
      if (error instanceof CommandError && PARENT_MISSING.test(error.stderrTail)) {
        throw new DeviceError(
          ErrorCode.ParentMissing,
          `btrfs receive: the parent snapshot of this incremental stream is not on the device (${error.message})`,
          { cause: error },
        );
      }
      throw toDeviceError(error, ErrorCode.ReceiveFailed, 'btrfs receive');
    }
    const name = parseReceivedName(output);
    if (name) return name;
    // a receive directory of its own holds exactly the new subvolume
    const entries = await readdir(directory);
    if (entries.length === 1) return entries[0];
    throw new DeviceError(ErrorCode.ReceiveFailed, `btrfs receive succeeded but named no subvolume: ${output.trim()}`);
  }

  /** Estimated free bytes of the pool (btrfs's own estimate, which accounts for the metadata profile). */
  async freeBytes(mount: string): Promise<number> {
    return parseFreeBytes(
      await this.btrfs(['filesystem', 'usage', '-b', mount], ErrorCode.Internal, 'reading pool usage'),
    );
  }
}
