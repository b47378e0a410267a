import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@cowroot/protocol';
import {
  COMMAND_HEADER_BYTES,
  CopyListMethod,
  DELTA_MAGIC,
  DELTA_MAGIC_V2,
  DeltaReconstructor,
  PATCH_DATA_CHUNK,
  SendAttr,
  SendCommand,
  encodeCopyList,
  encodePatchBegin,
  encodePatchData,
  encodeWriteRuns,
  frameCommand,
  splitWrite,
  streamHeader,
  tlv,
} from '@cowroot/device';
import { diffCopyList } from './copy-list-differ';
import { repeatableBytes } from '@cowroot/device/testing';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
}

const END = Buffer.concat(frameCommand(SendCommand.End, []));

describe('copy lists (format 3, method 1)', () => {
  let dir: string;
  const old = repeatableBytes(600_000, 1);
  // a rebuild: code inserted in two places, a stretch removed, words patched here and there
  const rebuilt = Buffer.concat([
    old.subarray(0, 100_000),
    repeatableBytes(200, 2),
    old.subarray(100_000, 300_000),
    old.subarray(310_000, 450_000),
    repeatableBytes(50, 3),
    old.subarray(450_000),
  ]);
  for (const at of [5_000, 77_777, 250_001, 400_000, 580_000]) rebuilt.writeUInt32LE(0xdeadbeef, at);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-copy-list-'));
    await writeFile(join(dir, 'big'), old);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** The plain stream of `rebuilt` written as WRITEs of 48 KiB, and the delta of it with a copy list. */
  function streams(list: Buffer, magic = DELTA_MAGIC) {
    const writes = [];
    for (let at = 0; at < rebuilt.length; at += 48 * 1024) {
      const data = rebuilt.subarray(at, at + 48 * 1024);
      writes.push(
        Buffer.concat(
          frameCommand(SendCommand.Write, [
            tlv(SendAttr.Path, Buffer.from('big')),
            tlv(SendAttr.FileOffset, u64(at)),
            tlv(SendAttr.Data, data),
          ]),
        ),
      );
    }
    const stubs = writes.map((command) => {
      const { prefix, suffix, data } = splitWrite(command.subarray(COMMAND_HEADER_BYTES), 1);
      return { prefix, dataLength: data.length, suffix, crc: command.readUInt32LE(6) };
    });
    const chunks = [];
    for (let at = 0; at < list.length; at += PATCH_DATA_CHUNK) chunks.push(list.subarray(at, at + PATCH_DATA_CHUNK));
    const delta = Buffer.concat([
      magic,
      streamHeader(1),
      ...encodePatchBegin({
        sourcePath: 'big',
        sourceSize: old.length,
        sourceSha256: sha256(old),
        targetSize: rebuilt.length,
        windowLog: 21,
        stubs: stubs.length,
        patchSize: list.length,
        method: CopyListMethod,
      }),
      ...encodeWriteRuns(stubs).flat(),
      ...chunks.flatMap((chunk) => encodePatchData(chunk)),
      END,
    ]);
    return { plain: Buffer.concat([streamHeader(1), ...writes, END]), delta };
  }

  async function rebuild(delta: Buffer, plain: Buffer): Promise<Buffer> {
    const reconstructor = new DeltaReconstructor({
      parentRoot: dir,
      expected: { size: plain.length, sha256: sha256(plain) },
      scratchDir: dir,
    });
    const parts: Buffer[] = [];
    async function* chunks() {
      for (let at = 0; at < delta.length; at += 5000) yield delta.subarray(at, at + 5000);
    }
    for await (const part of reconstructor.plainStream(chunks())) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }

  it('finds the edits: a few instructions, about as many literal bytes as were inserted or changed', () => {
    const list = diffCopyList(old, rebuilt)!;
    const literalBytes = list.literals.reduce((sum, bytes) => sum + bytes.length, 0);
    expect(literalBytes).toBeGreaterThanOrEqual(250 + 5 * 4 - 8);
    expect(literalBytes).toBeLessThan(250 + 5 * 4 + 64);
    expect(list.adds.length).toBeLessThan(16);
    const copied = list.copies.reduce((sum, n) => sum + n, 0);
    expect(copied + literalBytes).toBe(rebuilt.length);
  });

  it('rebuilds the plain stream on the device from the predecessor and the list', async () => {
    const { plain, delta } = streams(encodeCopyList(diffCopyList(old, rebuilt)!));
    expect((await rebuild(delta, plain)).equals(plain)).toBe(true);
  });

  it('refuses a damaged list, a predecessor with other bytes, and a copy list in a format 2 stream', async () => {
    const list = encodeCopyList(diffCopyList(old, rebuilt)!);
    const { plain, delta } = streams(list);
    // one literal byte flipped, the crc of its PATCH_DATA left as it was
    const damaged = Buffer.from(delta);
    damaged[delta.length - END.length - 10] ^= 1;
    await expect(rebuild(damaged, plain)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/patch section for big: bad patch data in its copy list/),
    });
    // a column changed and re-framed with a valid crc: the sizes no longer add up
    const shifted = Buffer.from(list);
    shifted[4] ^= 1;
    await expect(rebuild(streams(shifted).delta, plain)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/copy list disagrees with its sizes/),
    });
    await writeFile(join(dir, 'big'), repeatableBytes(old.length, 9));
    try {
      await expect(rebuild(delta, plain)).rejects.toMatchObject({
        code: ErrorCode.DeltaBaseMismatch,
        message: expect.stringMatching(/predecessor big in the parent snapshot has other content/),
      });
    } finally {
      await writeFile(join(dir, 'big'), old);
    }
    await expect(rebuild(streams(list, DELTA_MAGIC_V2).delta, plain)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
    });
  });
});
