import { isFlush, type LogEntry } from './log-writes.parser';
import { SUPERBLOCK_OFFSETS } from './uboot-view';

/**
 * How the btrfs superblock copies reach the disk in a write log (pure): for each stretch between two
 * flushes that writes the primary, whether a backup copy is written in the same stretch. The kernel's
 * write_dev_supers() submits every copy before waiting for any (REQ_FUA on the primary only, which a
 * virtio disk without FUA turns into write + flush), so copies in one stretch are in flight together
 * and a power cut can tear both.
 */
export interface SuperblockBatches {
  /** stretches that write the primary superblock (one per transaction commit) */
  commits: number;
  /** of those, how many also write a backup copy before the next flush */
  withBackupInSameBatch: number;
  /** of those, how many log the backup before the primary */
  backupFirst: number;
}

export function superblockBatches(entries: LogEntry[], poolOffset: number, sectorSize: number): SuperblockBatches {
  const [primary, ...backups] = SUPERBLOCK_OFFSETS.map((o) => (poolOffset + o) / sectorSize);
  const hits = (entry: LogEntry, sector: number) => entry.sector <= sector && sector < entry.sector + entry.nrSectors;
  const result: SuperblockBatches = { commits: 0, withBackupInSameBatch: 0, backupFirst: 0 };
  let batch: ('primary' | 'backup')[] = [];
  const close = () => {
    if (batch.includes('primary')) {
      result.commits++;
      if (batch.includes('backup')) {
        result.withBackupInSameBatch++;
        if (batch.indexOf('backup') < batch.indexOf('primary')) result.backupFirst++;
      }
    }
    batch = [];
  };
  for (const entry of entries) {
    if (isFlush(entry)) close();
    if (entry.nrSectors === 0) continue;
    if (hits(entry, primary)) batch.push('primary');
    if (backups.some((b) => hits(entry, b))) batch.push('backup');
  }
  close();
  return result;
}
