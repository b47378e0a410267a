import { LogFlag, parseWriteLog } from './log-writes.parser';
import { superblockBatches } from './superblock-batches';
import { encodeWriteLog, sectors } from './write-log.fixture';

describe('superblockBatches', () => {
  it('counts commits whose primary and backup superblocks share a stretch between flushes', () => {
    const pool = 1024 * 1024; // the pool partition starts at 1 MiB
    const primary = (pool + 64 * 1024) / 512;
    const backup = (pool + 64 * 1024 * 1024) / 512;
    const log = parseWriteLog(
      encodeWriteLog([
        { sector: 4096, data: sectors(8, 1) },
        { sector: 0, flags: LogFlag.flush },
        { sector: primary, data: sectors(8, 2) },
        { sector: backup, data: sectors(8, 2) },
        { sector: 0, flags: LogFlag.flush },
        { sector: backup, data: sectors(8, 3) },
        { sector: primary, data: sectors(8, 3) },
        { sector: 0, flags: LogFlag.flush },
        { sector: primary, data: sectors(8, 4) },
        { sector: 0, flags: LogFlag.flush },
        { sector: backup, data: sectors(8, 4) },
      ]),
    );
    expect(superblockBatches(log.entries, pool, 512)).toEqual({ commits: 3, withBackupInSameBatch: 2, backupFirst: 1 });
  });
});
