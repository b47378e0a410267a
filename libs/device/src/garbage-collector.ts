import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TEMP_PREFIX } from './atomic-file';
import { SnapshotStore } from './snapshot-store';

export interface StagingCleanupOptions {
  /** plain entries of staging/ to leave in place (the agent's resumable download spool) */
  keepEntry?: (name: string) => Promise<boolean>;
}

export interface StagingCleanup {
  /** subvolumes deleted below staging/ (relative to the pool), partial receives first among them */
  subvolumes: string[];
  /** other entries removed from staging/ */
  entries: string[];
  /** entries kept because options.keepEntry asked for it */
  kept: string[];
  /** meta/ files without a snapshot, and temp files of interrupted metadata writes */
  metadata: string[];
}

/**
 * docs/device.md §4. `referenced` returns the ids that must survive whatever the retention says: the
 * booted snapshot and every snapshot the u-boot env points at (SwitchService.snapshotsReferenced). It is
 * asked right before deleting, never cached.
 */
export class GarbageCollector {
  constructor(
    private readonly store: SnapshotStore,
    private readonly referenced: () => Promise<Iterable<string>>,
  ) {}

  /**
   * Removes what interrupted receives leave: every subvolume below staging/ (a partial receive is rw
   * without received_uuid; a complete one left there was never moved into snapshots/) and every other
   * entry but those `options.keepEntry` keeps. Only call it when no receive is running, i.e. at agent start.
   */
  async cleanStaging(options: StagingCleanupOptions = {}): Promise<StagingCleanup> {
    const result: StagingCleanup = { subvolumes: [], entries: [], kept: [], metadata: [] };
    await this.store.settled();
    const prefix = `${this.store.stagingDir.slice(this.store.poolPath.length).replace(/^\/+/, '')}/`;
    const staged = (await this.store.btrfs.listSubvolumes(this.store.poolPath))
      .filter((s) => s.path.startsWith(prefix))
      // children before parents, partial (rw, no received_uuid) before complete for the report's order
      .sort(
        (a, b) =>
          b.path.split('/').length - a.path.split('/').length ||
          Number(!!a.receivedUuid) - Number(!!b.receivedUuid) ||
          a.path.localeCompare(b.path),
      );
    for (const subvolume of staged) {
      await this.store.btrfs.deleteSubvolume(join(this.store.poolPath, subvolume.path));
      result.subvolumes.push(subvolume.path);
    }
    for (const entry of await this.store.stagingEntries()) {
      if (await options.keepEntry?.(entry)) {
        result.kept.push(entry);
        continue;
      }
      await rm(join(this.store.stagingDir, entry), { recursive: true, force: true });
      result.entries.push(entry);
    }
    result.metadata = await this.cleanMetadata();
    if (staged.length) await this.store.btrfs.waitForDeletions(this.store.poolPath);
    return result;
  }

  private async cleanMetadata(): Promise<string[]> {
    const snapshots = await this.store.snapshotSubvolumes();
    const removed: string[] = [];
    for (const name of await readdir(this.store.metaDir).catch(() => [] as string[])) {
      const orphan = name.endsWith('.json') && !snapshots.has(name.slice(0, -'.json'.length));
      if (orphan || name.startsWith(TEMP_PREFIX)) {
        await rm(join(this.store.metaDir, name), { force: true });
        removed.push(name);
      }
    }
    return removed;
  }

  /**
   * Keeps the `keepNewest` newest snapshots (by createdAt) and every referenced one, deletes the rest,
   * oldest first. Returns the deleted ids.
   */
  async applyRetention(keepNewest: number): Promise<string[]> {
    if (!Number.isInteger(keepNewest) || keepNewest < 0) throw new Error(`keepNewest must be an integer >= 0`);
    const snapshots = await this.store.list(); // oldest first
    const keep = new Set(snapshots.slice(Math.max(0, snapshots.length - keepNewest)).map((s) => s.id));
    const deleted: string[] = [];
    for (const snapshot of snapshots) {
      if (keep.has(snapshot.id)) continue;
      const referenced = new Set(await this.referenced());
      if (referenced.has(snapshot.id)) continue;
      await this.store.delete(snapshot.id, referenced);
      deleted.push(snapshot.id);
    }
    if (deleted.length) await this.store.btrfs.waitForDeletions(this.store.poolPath);
    return deleted;
  }

  /** What the agent runs at start: staging cleanup, then retention. */
  async collectAtStart(
    keepNewest: number,
    options: StagingCleanupOptions = {},
  ): Promise<{ staging: StagingCleanup; deleted: string[] }> {
    const staging = await this.cleanStaging(options);
    const deleted = await this.applyRetention(keepNewest);
    return { staging, deleted };
  }
}
