import {
  SendAttr,
  SendCommand,
  SendStreamFormatError,
  commandCrc,
  frameCommand,
  hasValidCrc,
  joinWrite,
  parseStreamHeader,
  splitWrite,
  streamHeader,
  tlv,
} from './send-stream';

function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
}

/** A WRITE as the kernel frames it: PATH, FILE_OFFSET, DATA (v1 with a length, v2 without). */
function kernelWrite(version: number, path: string, offset: number, data: Buffer): Buffer {
  const dataAttr = version >= 2 ? Buffer.concat([Buffer.from([SendAttr.Data, 0]), data]) : tlv(SendAttr.Data, data);
  return Buffer.concat(
    frameCommand(SendCommand.Write, [
      tlv(SendAttr.Path, Buffer.from(path)),
      tlv(SendAttr.FileOffset, u64(offset)),
      dataAttr,
    ]),
  );
}

describe('send stream framing', () => {
  it('reads the versions it knows and refuses anything else', () => {
    expect(parseStreamHeader(streamHeader(1))).toBe(1);
    expect(parseStreamHeader(streamHeader(2))).toBe(2);
    expect(() => parseStreamHeader(streamHeader(9))).toThrow(/version 9/);
    expect(() => parseStreamHeader(Buffer.from('cowroot-delta/1\n0000'))).toThrow(SendStreamFormatError);
  });

  it.each([1, 2])('splits a v%i WRITE around its data and joins it back byte for byte', (version) => {
    const data = Buffer.from('x'.repeat(3000));
    const write = kernelWrite(version, 'usr/bin/perl', 8192, data);
    expect(hasValidCrc(write)).toBe(true);
    const split = splitWrite(write.subarray(10), version);
    expect(split).toMatchObject({ path: 'usr/bin/perl', offset: 8192n, data, suffix: Buffer.alloc(0) });
    expect(Buffer.concat(joinWrite(version, split.prefix, split.data, split.suffix))).toEqual(write);
    // with the original crc carried along, the same bytes without computing it
    expect(Buffer.concat(joinWrite(version, split.prefix, split.data, split.suffix, write.readUInt32LE(6)))).toEqual(
      write,
    );
    // new data, same framing: a valid command again
    const rebuilt = Buffer.concat(joinWrite(version, split.prefix, Buffer.from('y'.repeat(10)), split.suffix));
    expect(hasValidCrc(rebuilt)).toBe(true);
  });

  it('notices a flipped bit and a crc computed over split parts matches the whole', () => {
    const write = kernelWrite(1, 'a', 0, Buffer.from('hello'));
    expect(commandCrc([write.subarray(0, 12), write.subarray(12)])).toBe(write.readUInt32LE(6));
    write[write.length - 1] ^= 1;
    expect(hasValidCrc(write)).toBe(false);
  });

  it('refuses attributes that run past their command', () => {
    const bad = Buffer.concat([tlv(SendAttr.Path, Buffer.from('abc')).subarray(0, 5)]);
    expect(() => splitWrite(bad, 1)).toThrow(SendStreamFormatError);
  });
});
