import { LogFlag, LogFormatError, isDataWrite, isFlush, parseWriteLog } from './log-writes.parser';
import { encodeWriteLog, sectors } from './write-log.fixture';

describe('parseWriteLog', () => {
  it('reads writes with their data offsets, and flushes', () => {
    const log = encodeWriteLog([
      { sector: 128, data: sectors(2, 0xaa) },
      { sector: 0, flags: LogFlag.flush },
      { sector: 8, data: sectors(1, 0xbb), flags: LogFlag.fua },
    ]);
    const parsed = parseWriteLog(log);
    expect(parsed.sectorSize).toBe(512);
    expect(parsed.entries.map((e) => [e.index, e.sector, e.nrSectors, e.flags])).toEqual([
      [0, 128, 2, 0],
      [1, 0, 0, LogFlag.flush],
      [2, 8, 1, LogFlag.fua],
    ]);
    // super sector, entry sector, then the data
    expect(parsed.entries[0].dataOffset).toBe(1024);
    expect(log[parsed.entries[0].dataOffset]).toBe(0xaa);
    expect(log[parsed.entries[2].dataOffset]).toBe(0xbb);
    expect(parsed.entries.map(isFlush)).toEqual([false, true, false]);
    expect(parsed.entries.map(isDataWrite)).toEqual([true, false, true]);
  });

  it('does not expect data after a discard', () => {
    const log = encodeWriteLog([
      { sector: 16, flags: LogFlag.discard },
      { sector: 4, data: sectors(1, 1) },
    ]);
    // a discard names its range but carries no data: rewrite nr_sectors as the driver does
    log.writeBigUInt64LE(8n, 512 + 8);
    const parsed = parseWriteLog(log);
    expect(parsed.entries[0]).toMatchObject({ nrSectors: 8, flags: LogFlag.discard });
    expect(isDataWrite(parsed.entries[0])).toBe(false);
    // super, discard entry, write entry: the data follows at once
    expect(parsed.entries[1].dataOffset).toBe(512 * 3);
  });

  it('rejects what is not a whole log, saying why', () => {
    expect(() => parseWriteLog(Buffer.alloc(10))).toThrow(LogFormatError);
    expect(() => parseWriteLog(Buffer.alloc(512))).toThrow(/magic/);
    const log = encodeWriteLog([{ sector: 1, data: sectors(4, 7) }]);
    expect(() => parseWriteLog(log.subarray(0, log.length - 512))).toThrow(/past the end/);
    const badFlags = encodeWriteLog([{ sector: 1, data: sectors(1, 7), flags: 0x40 }]);
    expect(() => parseWriteLog(badFlags)).toThrow(/unknown flags 0x40/);
    const short = encodeWriteLog([{ sector: 1, data: sectors(1, 7) }]);
    short.writeBigUInt64LE(3n, 16);
    expect(() => parseWriteLog(short)).toThrow(/ends inside entry 1 of 3/);
  });
});
