import { DeltaCommand, WriteStub } from './delta-format';
import { COMMAND_HEADER_BYTES, SendAttr, SendCommand, hasValidCrc, splitWrite, frameCommand, tlv } from './send-stream';
import { MAX_RUN_WRITES, decodeWriteRun, encodeWriteRuns } from './write-run';

function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
}

/** The stub the release tool makes of a real WRITE command (path, offset, data). */
function stubOf(path: string, offset: number, length: number): WriteStub {
  const command = Buffer.concat(
    frameCommand(SendCommand.Write, [
      tlv(SendAttr.Path, Buffer.from(path)),
      tlv(SendAttr.FileOffset, u64(offset)),
      tlv(SendAttr.Data, Buffer.alloc(length, offset & 0xff)),
    ]),
  );
  const { prefix, suffix } = splitWrite(command.subarray(COMMAND_HEADER_BYTES), 1);
  return { prefix: Buffer.from(prefix), dataLength: length, suffix: Buffer.from(suffix), crc: command.readUInt32LE(6) };
}

const decodeAll = (commands: Buffer[][]) =>
  commands.flatMap((parts) => decodeWriteRun(Buffer.concat(parts).subarray(COMMAND_HEADER_BYTES)));

describe('write runs (format 3)', () => {
  it('puts the writes that follow each other in one framed command and gives back each stub byte for byte', () => {
    const stubs = Array.from({ length: 1025 }, (_, i) => stubOf('usr/bin/big', i * 49152, i === 1024 ? 1000 : 49152));
    const commands = encodeWriteRuns(stubs);
    expect(commands).toHaveLength(1);
    const command = Buffer.concat(commands[0]);
    expect(command.readUInt16LE(4)).toBe(DeltaCommand.WriteRun);
    expect(hasValidCrc(command)).toBe(true);
    // the path and offset once, then 4 bytes of length and 4 of crc per write: ≈ 8 KB where 1,025 stubs
    // took ≈ 60 KB
    expect(command.length).toBeLessThan(8 * 1025 + 64);
    expect(decodeAll(commands)).toEqual(stubs);
  });

  it('starts another run at a gap, at another file, and after MAX_RUN_WRITES writes', () => {
    const stubs = [
      stubOf('a', 0, 100),
      stubOf('a', 100, 50),
      stubOf('a', 4096, 10), // a hole before it
      stubOf('b', 10, 10), // another path: another prefix
      ...Array.from({ length: MAX_RUN_WRITES + 1 }, (_, i) => stubOf('c', i * 8, 8)),
    ];
    const commands = encodeWriteRuns(stubs);
    expect(commands.map((parts) => decodeWriteRun(Buffer.concat(parts).subarray(COMMAND_HEADER_BYTES)).length)).toEqual(
      [2, 1, 1, MAX_RUN_WRITES, 1],
    );
    expect(decodeAll(commands)).toEqual(stubs);
  });

  it('refuses a run whose lists disagree or whose prefix has no offset', () => {
    const [command] = encodeWriteRuns([stubOf('a', 0, 100), stubOf('a', 100, 100)]);
    const payload = Buffer.concat(command).subarray(COMMAND_HEADER_BYTES);
    // the crc list (the last attribute) one entry short
    const short = Buffer.from(payload.subarray(0, payload.length - 4));
    short.writeUInt16LE(4, short.length - 4 - 2);
    expect(() => decodeWriteRun(short)).toThrow(/WRITE_RUN: its lengths and crcs disagree/);
    expect(() => decodeWriteRun(tlv(1, tlv(SendAttr.Path, Buffer.from('a'))))).toThrow(/WRITE_RUN lacks an attribute/);
    const noOffset = Buffer.concat([
      tlv(1, tlv(SendAttr.Path, Buffer.from('a'))),
      tlv(3, Buffer.alloc(4)),
      tlv(4, Buffer.alloc(4)),
    ]);
    expect(() => decodeWriteRun(noOffset)).toThrow(/prefix has no file offset/);
  });
});
