import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCode, ReleaseRef, SnapshotInfo, SnapshotOrigin, isSnapshotId } from '@cowroot/protocol';
import { BtrfsAdapter, ReceiveSource, Subvolume } from './btrfs.adapter';
import { writeFileAtomic } from './atomic-file';
import { DeviceError } from './device-error';
import { DeltaReconstructor } from './delta/delta-reconstructor';

/** docs/device.md §1: directories below the pool (the btrfs top level, subvolid=5). */
export const POOL_LAYOUT = {
  snapshots: 'snapshots',
  workspace: 'workspace',
  staging: 'staging',
  meta: 'meta',
  state: 'state',
} as const;

const BTRFS_TOP_LEVEL_ID = 5;

/** meta/<id>.json (docs/device.md §2). Lives outside the snapshot because the snapshot is read-only. */
export interface SnapshotMetadata {
  id: string;
  origin: SnapshotOrigin;
  release: { name: string; version: string } | null;
  /** the snapshot this one was received on top of (incremental) or committed from (workspace); null for full */
  parent: string | null;
  createdAt: string;
}

export interface ReceiveIntoStoreOptions {
  snapshotId: string;
  release: ReleaseRef | { name: string; version: string };
  /** the UUID the build host's snapshot had (manifest `snapshotUuid`), which btrfs stores as received_uuid */
  expectedReceivedUuid: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface SnapshotStoreOptions {
  /** where the btrfs top level (subvolid=5) is mounted */
  poolPath: string;
  btrfs?: BtrfsAdapter;
  now?: () => Date;
}

/** '2026-11-26 00:43:19 +0000' (btrfs subvolume show) → ISO 8601. */
export function btrfsTimeToIso(text: string): string | null {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text.trim());
  if (!match) return null;
  const date = new Date(`${match[1]}T${match[2]}${match[3]}${match[4]}:${match[5]}`);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

function parseMetadata(text: string, id: string): SnapshotMetadata | null {
  try {
    const value = JSON.parse(text) as Partial<SnapshotMetadata>;
    if (value.id !== id || !Object.values(SnapshotOrigin).includes(value.origin as SnapshotOrigin)) return null;
    if (typeof value.createdAt !== 'string' || Number.isNaN(Date.parse(value.createdAt))) return null;
    const release =
      value.release && typeof value.release.name === 'string' && typeof value.release.version === 'string'
        ? { name: value.release.name, version: value.release.version }
        : null;
    return {
      id,
      origin: value.origin as SnapshotOrigin,
      release,
      parent: typeof value.parent === 'string' ? value.parent : null,
      createdAt: value.createdAt,
    };
  } catch {
    return null;
  }
}

/**
 * The snapshots on the device and the operations that make or remove them (docs/device.md §1–2).
 * Snapshot ids are directory names under snapshots/ and values in the u-boot env, hence isSnapshotId.
 */
export class SnapshotStore {
  readonly poolPath: string;
  readonly snapshotsDir: string;
  readonly workspacePath: string;
  readonly stagingDir: string;
  readonly metaDir: string;
  readonly stateDir: string;
  readonly btrfs: BtrfsAdapter;
  private readonly now: () => Date;
  /** deletion of the staged copy of the last receive, which runs after receive() has returned */
  private stagedCleanup: Promise<void> = Promise.resolve();

  constructor(options: SnapshotStoreOptions) {
    this.poolPath = options.poolPath;
    this.snapshotsDir = join(options.poolPath, POOL_LAYOUT.snapshots);
    this.workspacePath = join(options.poolPath, POOL_LAYOUT.workspace);
    this.stagingDir = join(options.poolPath, POOL_LAYOUT.staging);
    this.metaDir = join(options.poolPath, POOL_LAYOUT.meta);
    this.stateDir = join(options.poolPath, POOL_LAYOUT.state);
    this.btrfs = options.btrfs ?? new BtrfsAdapter();
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Checks that the pool path is the btrfs top level, then creates the plain directories of the layout
   * (the workspace subvolume is the initramfs's job). Paths from `btrfs subvolume list` are relative to
   * the top level, so a pool mounted as any other subvolume would make every path wrong.
   */
  async init(): Promise<void> {
    const rootId = await this.btrfs.rootId(this.poolPath);
    // the root directory of any subvolume, the top level included, is inode 256
    const { ino } = await stat(this.poolPath);
    if (rootId !== BTRFS_TOP_LEVEL_ID || ino !== 256) {
      throw new DeviceError(
        ErrorCode.Internal,
        `${this.poolPath} is not the top level of a btrfs filesystem (subvolume ${rootId}, inode ${ino}); mount it with -o subvolid=5`,
      );
    }
    for (const dir of [this.snapshotsDir, this.stagingDir, this.metaDir, this.stateDir]) {
      await mkdir(dir, { recursive: true });
    }
  }

  snapshotPath(id: string): string {
    return join(this.snapshotsDir, id);
  }

  metadataPath(id: string): string {
    return join(this.metaDir, `${id}.json`);
  }

  /** Subvolumes at snapshots/<id>, keyed by id (anything deeper or with a non-id name is not a snapshot). */
  async snapshotSubvolumes(): Promise<Map<string, Subvolume>> {
    const byId = new Map<string, Subvolume>();
    for (const subvolume of await this.btrfs.listSubvolumes(this.poolPath)) {
      const match = /^snapshots\/([^/]+)$/.exec(subvolume.path);
      if (match && isSnapshotId(match[1])) byId.set(match[1], subvolume);
    }
    return byId;
  }

  async readMetadata(id: string): Promise<SnapshotMetadata | null> {
    try {
      return parseMetadata(await readFile(this.metadataPath(id), 'utf8'), id);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  private async writeMetadata(metadata: SnapshotMetadata): Promise<void> {
    await writeFileAtomic(this.metadataPath(metadata.id), `${JSON.stringify(metadata, null, 2)}\n`);
  }

  /**
   * A snapshot without metadata (written at manufacturing time, or a crash between rename and the
   * metadata write) reads as origin `factory`, created at the subvolume's btrfs creation time.
   */
  private async toInfo(id: string, subvolume: Subvolume): Promise<SnapshotInfo> {
    const metadata = await this.readMetadata(id);
    let createdAt = metadata?.createdAt ?? null;
    if (!createdAt) {
      const { creationTime } = await this.btrfs.show(this.snapshotPath(id));
      createdAt = creationTime ? btrfsTimeToIso(creationTime) : null;
      createdAt ??= (await stat(this.snapshotPath(id))).mtime.toISOString();
    }
    return {
      id,
      uuid: subvolume.uuid,
      receivedUuid: subvolume.receivedUuid,
      parentUuid: subvolume.parentUuid,
      readOnly: subvolume.readOnly,
      origin: metadata?.origin ?? SnapshotOrigin.Factory,
      release: metadata?.release ?? null,
      createdAt,
    };
  }

  /** Every snapshot, oldest first (by createdAt, then id). */
  async list(): Promise<SnapshotInfo[]> {
    const infos: SnapshotInfo[] = [];
    for (const [id, subvolume] of await this.snapshotSubvolumes()) infos.push(await this.toInfo(id, subvolume));
    return infos.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async get(id: string): Promise<SnapshotInfo | null> {
    if (!isSnapshotId(id)) return null;
    const subvolume = (await this.snapshotSubvolumes()).get(id);
    return subvolume ? this.toInfo(id, subvolume) : null;
  }

  /** The snapshot that can serve as the parent of an incremental stream whose parent had `uuid` on the build host. */
  async findByReceivedUuid(uuid: string): Promise<SnapshotInfo | null> {
    for (const [id, subvolume] of await this.snapshotSubvolumes()) {
      if (subvolume.receivedUuid === uuid && subvolume.readOnly) return this.toInfo(id, subvolume);
    }
    return null;
  }

  private async assertNewId(id: string): Promise<void> {
    if (!isSnapshotId(id))
      throw new DeviceError(ErrorCode.MalformedMessage, `invalid snapshot id ${JSON.stringify(id)}`);
    const exists = await stat(this.snapshotPath(id)).then(
      () => true,
      () => false,
    );
    if (exists) throw new DeviceError(ErrorCode.ReceiveFailed, `snapshot ${id} already exists`);
  }

  private async idOfUuid(uuid: string | null): Promise<string | null> {
    if (!uuid) return null;
    for (const [id, subvolume] of await this.snapshotSubvolumes()) if (subvolume.uuid === uuid) return id;
    return null;
  }

  /**
   * `btrfs receive` into a fresh directory under staging/, check that the result is complete (read-only,
   * received_uuid set) and is the expected one, take a read-only snapshot of it as snapshots/<id>, write its metadata. On any
   * failure everything this call created is deleted again, so the pool looks as before.
   * A Readable source is consumed (or destroyed on an early failure); `{ file }` is read by btrfs directly.
   */
  async receive(source: ReceiveSource, options: ReceiveIntoStoreOptions): Promise<SnapshotInfo> {
    const id = options.snapshotId;
    try {
      await this.settled();
      await this.assertNewId(id);
    } catch (error) {
      if (source instanceof Readable) source.destroy();
      throw error;
    }
    const workDir = join(this.stagingDir, `${id}.${randomBytes(4).toString('hex')}`);
    const target = this.snapshotPath(id);
    let moved = false;
    await mkdir(workDir, { recursive: true });
    try {
      const name = await this.btrfs.receive(source, workDir, { signal: options.signal, timeoutMs: options.timeoutMs });
      const received = join(workDir, name);
      // The sync makes the received data durable before any trial, and the snapshot below instant (a
      // snapshot of a subvolume with unwritten data flushes it itself, measurably slower). It runs while
      // the subvolume is checked; if the check fails, it has only written what is deleted next.
      const [details] = await Promise.all([this.btrfs.show(received), this.btrfs.syncFilesystem(this.poolPath)]);
      if (!details.receivedUuid || !details.readOnly) {
        throw new DeviceError(
          ErrorCode.ReceiveFailed,
          'btrfs receive ended without a complete subvolume (stream truncated?)',
        );
      }
      if (details.receivedUuid !== options.expectedReceivedUuid) {
        throw new DeviceError(
          ErrorCode.ReceiveFailed,
          `received snapshot has received_uuid ${details.receivedUuid}, the manifest says ${options.expectedReceivedUuid}`,
        );
      }
      // a full stream has no parent; an incremental one was received as a snapshot of its parent
      const parent = details.parentUuid ? await this.idOfUuid(details.parentUuid) : null;
      // Not rename(2): moving a read-only subvolume to another directory needs write access to its root
      // (to rewrite '..') and fails with EROFS. A read-only snapshot keeps received_uuid (the kernel clears
      // it only in rw snapshots), so it serves as an incremental parent just like the received subvolume.
      await this.btrfs.snapshot(received, target, { readOnly: true });
      moved = true;
      const metadata: SnapshotMetadata = {
        id,
        origin: SnapshotOrigin.Received,
        release: { name: options.release.name, version: options.release.version },
        parent,
        createdAt: this.now().toISOString(),
      };
      const [snapshot] = await Promise.all([this.btrfs.show(target), this.writeMetadata(metadata)]);
      this.stagedCleanup = this.removeStaged(received, workDir);
      return {
        id,
        uuid: snapshot.uuid,
        receivedUuid: snapshot.receivedUuid,
        parentUuid: snapshot.parentUuid,
        readOnly: snapshot.readOnly,
        origin: metadata.origin,
        release: metadata.release,
        createdAt: metadata.createdAt,
      };
    } catch (error) {
      await this.discardReceive(workDir, moved ? id : null);
      throw error;
    }
  }

  /**
   * A delta artifact (docs/agent.md §4.3): its descriptor is decompressed and rebuilt into the plain
   * stream on the fly, predecessors read from snapshots/<parentId>, straight into receive() — no staged
   * copy. A rebuild that fails or does not match `reconstructs` fails the receive, which deletes it.
   */
  async receiveDelta(
    file: { fd: number; compression: 'zstd' | 'none' },
    delta: { parentId: string; reconstructs: { size: number; sha256: string }; maxWindowLog?: number },
    options: ReceiveIntoStoreOptions,
  ): Promise<SnapshotInfo> {
    const reconstructor = new DeltaReconstructor({
      parentRoot: this.snapshotPath(delta.parentId),
      expected: delta.reconstructs,
      maxWindowLog: delta.maxWindowLog,
      // a batch's dictionary goes to the pool, not to a /tmp that may be RAM
      scratchDir: this.stagingDir,
    });
    try {
      return await this.receive(reconstructor.plainStreamFromFile(file.fd, file.compression), options);
    } catch (error) {
      throw await reconstructor.explainReceiveFailure(error);
    }
  }

  /**
   * Resolves once the staged copy of the last receive is deleted. That deletion runs after receive()
   * returned because it evicts the copy's page cache (about 0.1 s per GiB), work the snapshot does not
   * need to wait for; receive() and the garbage collector wait for it, and a failure or a power cut
   * before it committed leaves the copy in staging/, which the garbage collector removes at start.
   */
  settled(): Promise<void> {
    return this.stagedCleanup;
  }

  private async removeStaged(received: string, workDir: string): Promise<void> {
    try {
      await this.btrfs.deleteSubvolume(received, { commit: false });
      await rm(workDir, { recursive: true, force: true });
    } catch {
      // left for the garbage collector (see settled())
    }
  }

  /** Deletes every subvolume below `workDir` (deepest first), the directory, and a snapshot already moved. */
  private async discardReceive(workDir: string, movedId: string | null): Promise<void> {
    const relative = workDir.slice(this.poolPath.length).replace(/^\/+/, '');
    try {
      const subvolumes = await this.btrfs.listSubvolumes(this.poolPath);
      const inside = subvolumes
        .filter((s) => s.path.startsWith(`${relative}/`))
        .sort((a, b) => b.path.split('/').length - a.path.split('/').length);
      for (const subvolume of inside) await this.btrfs.deleteSubvolume(join(this.poolPath, subvolume.path));
      if (movedId) {
        await this.btrfs.deleteSubvolume(this.snapshotPath(movedId));
        await rm(this.metadataPath(movedId), { force: true });
      }
      // after DISK_FULL the caller wants the space back before it reports or retries
      await this.btrfs.waitForDeletions(this.poolPath);
    } finally {
      // the garbage collector retries at the next agent start if something here failed
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * A read-only snapshot of the rw workspace as snapshots/<id> (origin committed). It has no
   * received_uuid, so it can never be the parent of an incremental stream.
   */
  async commitWorkspace(
    id: string,
    options: { release?: { name: string; version: string } | null } = {},
  ): Promise<SnapshotInfo> {
    await this.assertNewId(id);
    const target = this.snapshotPath(id);
    await this.btrfs.snapshot(this.workspacePath, target, { readOnly: true });
    try {
      const workspace = await this.btrfs.show(this.workspacePath);
      await this.writeMetadata({
        id,
        origin: SnapshotOrigin.Committed,
        release: options.release ?? null,
        parent: await this.idOfUuid(workspace.parentUuid),
        createdAt: this.now().toISOString(),
      });
    } catch (error) {
      await this.btrfs.deleteSubvolume(target).catch(() => undefined);
      throw error;
    }
    const info = await this.get(id);
    if (!info) throw new DeviceError(ErrorCode.Internal, `snapshot ${id} vanished right after the commit`);
    return info;
  }

  /**
   * Deletes snapshots/<id> and its metadata. `inUse` are the ids that must survive (booted, current,
   * trial: SwitchService.snapshotsInUse); they give SNAPSHOT_IN_USE, an unknown id SNAPSHOT_NOT_FOUND.
   */
  async delete(id: string, inUse: Iterable<string>): Promise<void> {
    if (!isSnapshotId(id) || !(await this.snapshotSubvolumes()).has(id)) {
      throw new DeviceError(ErrorCode.SnapshotNotFound, `no snapshot ${JSON.stringify(id)} on this device`);
    }
    if (new Set(inUse).has(id)) {
      throw new DeviceError(ErrorCode.SnapshotInUse, `snapshot ${id} is booted, current or the pending trial`);
    }
    await this.btrfs.deleteSubvolume(this.snapshotPath(id));
    await rm(this.metadataPath(id), { force: true });
  }

  async freeBytes(): Promise<number> {
    return this.btrfs.freeBytes(this.poolPath);
  }

  /** Names in staging/ (for the garbage collector). */
  async stagingEntries(): Promise<string[]> {
    return readdir(this.stagingDir).catch(() => []);
  }
}
