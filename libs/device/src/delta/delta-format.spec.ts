import { execFileSync } from 'node:child_process';
import { ByteReader } from './byte-reader';
import {
  DeltaCommand,
  READABLE_DELTA_FORMATS,
  decodePatchBegin,
  deltaFormatOf,
  deltaMagicOf,
  decodeWriteStub,
  encodePatchBegin,
  encodeWriteStub,
  zstdFrameHasChecksum,
} from './delta-format';
import { hasValidCrc, tlv } from './send-stream';

describe('delta stream commands', () => {
  it('reports as readable exactly the formats whose magic deltaFormatOf accepts', () => {
    const accepted = [1, 2, 3, 4, 5].filter((n) => {
      const magic = Buffer.from(`cowroot-delta/${n}\n`, 'latin1');
      return deltaFormatOf(magic) === n;
    });
    expect([...READABLE_DELTA_FORMATS]).toEqual(accepted);
    for (const format of READABLE_DELTA_FORMATS) expect(deltaFormatOf(deltaMagicOf(format))).toBe(format);
  });

  it('encode and decode a patch section header and a write stub, crc included', () => {
    const begin = {
      sourcePath: 'usr/lib/libzstd.so.1.5.4',
      sourceSize: 1234567,
      sourceSha256: 'ab'.repeat(32),
      targetSize: 99999,
      windowLog: 21,
      stubs: 3,
      patchSize: 4567,
    };
    const command = Buffer.concat(encodePatchBegin(begin));
    expect(command.readUInt16LE(4)).toBe(DeltaCommand.PatchBegin);
    expect(hasValidCrc(command)).toBe(true);
    // method 0 (a zstd frame) is not written, so formats 1 and 2 read the same bytes as before
    expect(decodePatchBegin(command.subarray(10))).toEqual({ ...begin, method: 0 });
    const copyList = Buffer.concat(encodePatchBegin({ ...begin, method: 1 }));
    expect(copyList.length).toBe(command.length + 8);
    expect(decodePatchBegin(copyList.subarray(10))).toEqual({ ...begin, method: 1 });
    const stub = { prefix: Buffer.from('prefix'), dataLength: 49152, suffix: Buffer.alloc(0), crc: 0xdeadbeef };
    expect(decodeWriteStub(Buffer.concat(encodeWriteStub(stub)).subarray(10))).toEqual(stub);
  });

  it('tells a zstd frame with a content checksum (what the device relies on to hash predecessors lazily)', () => {
    const frame = (flag: string) => execFileSync('zstd', ['-q', '-c', flag], { input: Buffer.alloc(5000, 7) });
    expect(zstdFrameHasChecksum(frame('--check'))).toBe(true);
    expect(zstdFrameHasChecksum(frame('--no-check'))).toBe(false);
    expect(zstdFrameHasChecksum(Buffer.from('not zstd at all'))).toBe(false);
    expect(zstdFrameHasChecksum(frame('--check').subarray(0, 4))).toBe(false);
  });

  it('refuses a patch header missing an attribute', () => {
    // only the source path (attribute 1)
    expect(() => decodePatchBegin(tlv(1, Buffer.from('usr/bin/perl')))).toThrow(/PATCH_BEGIN lacks attribute 3/);
  });
});

describe(ByteReader.name, () => {
  async function* chunks(...parts: string[]) {
    for (const part of parts) yield Buffer.from(part);
  }

  it('reads exact lengths across chunk borders and reports the end', async () => {
    const reader = new ByteReader(chunks('ab', 'cdef', '', 'g'));
    expect((await reader.read(3)).toString()).toBe('abc');
    expect((await reader.read(1)).toString()).toBe('d');
    expect(await reader.atEnd()).toBe(false);
    expect((await reader.read(10)).toString()).toBe('efg');
    expect(await reader.atEnd()).toBe(true);
    expect((await reader.read(1)).length).toBe(0);
  });
});
