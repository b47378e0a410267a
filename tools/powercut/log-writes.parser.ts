/**
 * The write log of QEMU's `blklogwrites` block driver, which uses the on-disk format of Linux's
 * dm-log-writes (drivers/md/dm-log-writes.c, QEMU block/blklogwrites.c). All fields little-endian:
 *   sector 0        super: magic u64, version u64, nr_entries u64, sectorsize u32
 *   then per entry  one log sector holding sector u64, nr_sectors u64, flags u64, data_len u64,
 *                   followed by nr_sectors data sectors (none for a discard)
 * `sector` and `nr_sectors` count log sectors (the driver's sectorsize, 512 B here).
 * Pure: takes the bytes, returns the entries; every malformed log is a clear error.
 */
export const LOG_WRITES_MAGIC = 0x6a736677736872n;
export const LOG_WRITES_VERSION = 1n;

export const LogFlag = {
  flush: 1,
  fua: 2,
  discard: 4,
  mark: 8,
} as const;
const KNOWN_FLAGS = LogFlag.flush | LogFlag.fua | LogFlag.discard | LogFlag.mark;

export interface LogEntry {
  /** position in the log, from 0 */
  index: number;
  /** first disk sector written (log sectors) */
  sector: number;
  nrSectors: number;
  flags: number;
  /** byte offset of the entry's data in the log (meaningless for a discard or a flush) */
  dataOffset: number;
}

export interface WriteLog {
  sectorSize: number;
  entries: LogEntry[];
}

export class LogFormatError extends Error {}

export function isFlush(entry: LogEntry): boolean {
  return (entry.flags & LogFlag.flush) !== 0;
}

export function isFua(entry: LogEntry): boolean {
  return (entry.flags & LogFlag.fua) !== 0;
}

/** A write that carries data (not a pure flush, not a discard, not a mark). */
export function isDataWrite(entry: LogEntry): boolean {
  return entry.nrSectors > 0 && (entry.flags & (LogFlag.discard | LogFlag.mark)) === 0;
}

export function parseWriteLog(log: Buffer): WriteLog {
  if (log.length < 28) throw new LogFormatError(`write log is ${log.length} bytes: shorter than its super block`);
  const magic = log.readBigUInt64LE(0);
  if (magic !== LOG_WRITES_MAGIC) {
    throw new LogFormatError(`not a dm-log-writes log: magic 0x${magic.toString(16)}`);
  }
  const version = log.readBigUInt64LE(8);
  if (version !== LOG_WRITES_VERSION) throw new LogFormatError(`unsupported log version ${version}`);
  const count = Number(log.readBigUInt64LE(16));
  const sectorSize = log.readUInt32LE(24);
  if (sectorSize < 32 || (sectorSize & (sectorSize - 1)) !== 0) {
    throw new LogFormatError(`invalid log sector size ${sectorSize}`);
  }
  const entries: LogEntry[] = [];
  let offset = sectorSize;
  for (let index = 0; index < count; index++) {
    if (offset + 32 > log.length) {
      throw new LogFormatError(`log ends inside entry ${index} of ${count} (offset ${offset}, ${log.length} bytes)`);
    }
    const sector = Number(log.readBigUInt64LE(offset));
    const nrSectors = Number(log.readBigUInt64LE(offset + 8));
    const flags = Number(log.readBigUInt64LE(offset + 16));
    if ((flags & ~KNOWN_FLAGS) !== 0)
      throw new LogFormatError(`entry ${index} has unknown flags 0x${flags.toString(16)}`);
    const dataOffset = offset + sectorSize;
    const hasData = (flags & LogFlag.discard) === 0;
    const end = dataOffset + (hasData ? nrSectors * sectorSize : 0);
    if (end > log.length) throw new LogFormatError(`entry ${index}'s data runs past the end of the log`);
    entries.push({ index, sector, nrSectors, flags, dataOffset });
    offset = end;
  }
  return { sectorSize, entries };
}
