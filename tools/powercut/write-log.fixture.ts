import { LOG_WRITES_MAGIC } from './log-writes.parser';

/** Test fixture: a dm-log-writes log in the format blklogwrites writes (one entry sector + data sectors). */
export interface FixtureEntry {
  sector: number;
  /** data, a whole number of 512-byte sectors; omitted for a flush */
  data?: Buffer;
  flags?: number;
}

export function encodeWriteLog(entries: FixtureEntry[], sectorSize = 512): Buffer {
  const parts: Buffer[] = [];
  const superBlock = Buffer.alloc(sectorSize);
  superBlock.writeBigUInt64LE(LOG_WRITES_MAGIC, 0);
  superBlock.writeBigUInt64LE(1n, 8);
  superBlock.writeBigUInt64LE(BigInt(entries.length), 16);
  superBlock.writeUInt32LE(sectorSize, 24);
  parts.push(superBlock);
  for (const entry of entries) {
    const header = Buffer.alloc(sectorSize);
    const data = entry.data ?? Buffer.alloc(0);
    header.writeBigUInt64LE(BigInt(entry.sector), 0);
    header.writeBigUInt64LE(BigInt(data.length / sectorSize), 8);
    header.writeBigUInt64LE(BigInt(entry.flags ?? 0), 16);
    parts.push(header, data);
  }
  return Buffer.concat(parts);
}

/** `count` sectors filled with `byte`. */
export function sectors(count: number, byte: number): Buffer {
  return Buffer.alloc(count * 512, byte);
}
