import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@cowroot/protocol';
import * as youngGarbage from '../young-garbage';
import {
  DELTA_MAGIC,
  DELTA_MAGIC_V1,
  DELTA_MAGIC_V2,
  encodeBatchBegin,
  encodeBatchSource,
  encodePatchBegin,
  encodePatchData,
  encodeWriteStub,
} from './delta-format';
import { encodeWriteRuns } from './write-run';
import { DeltaReconstructor } from './delta-reconstructor';
import {
  COMMAND_HEADER_BYTES,
  SendAttr,
  SendCommand,
  frameCommand,
  splitWrite,
  streamHeader,
  tlv,
} from './send-stream';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
}

/** A plain command that is not a WRITE (what most of a send stream is: chown, utimes, …). */
const plain = (i: number) => Buffer.concat(frameCommand(20, [tlv(SendAttr.Path, Buffer.from(`file-${i}`))]));
const write = (path: string, offset: number, data: Buffer) =>
  Buffer.concat(
    frameCommand(SendCommand.Write, [
      tlv(SendAttr.Path, Buffer.from(path)),
      tlv(SendAttr.FileOffset, u64(offset)),
      tlv(SendAttr.Data, data),
    ]),
  );
const END = Buffer.concat(frameCommand(SendCommand.End, []));

/** Feeds `bytes` in odd chunk sizes, so commands straddle chunk borders. */
async function* chunked(bytes: Buffer, size = 777): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

describe(DeltaReconstructor.name, () => {
  let dir: string;
  let parent: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-reconstructor-'));
    parent = join(dir, 'parent');
    await mkdir(parent);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const rebuild = (delta: Buffer, expected: Buffer) =>
    collect(
      new DeltaReconstructor({
        parentRoot: parent,
        expected: { size: expected.length, sha256: sha256(expected) },
        scratchDir: dir,
      }).plainStream(chunked(delta)),
    );

  it('passes thousands of plain commands through unchanged, across chunk borders', async () => {
    const stream = Buffer.concat([streamHeader(1), ...Array.from({ length: 3000 }, (_, i) => plain(i)), END]);
    for (const magic of [DELTA_MAGIC, DELTA_MAGIC_V2, DELTA_MAGIC_V1]) {
      const delta = Buffer.concat([magic, stream]);
      expect((await rebuild(delta, stream)).equals(stream)).toBe(true);
    }
  });

  it('collects the young garbage every 2 MiB of rebuilt output', async () => {
    const collect = jest.spyOn(youngGarbage, 'collectYoungGarbage');
    try {
      // 5 MiB of WRITEs of 48 KiB: two collections (at 2 and 4 MiB), not one per command
      const data = Buffer.alloc(48 * 1024, 7);
      const writes = Array.from({ length: Math.ceil((5 * 1024 * 1024) / data.length) }, (_, i) =>
        write('big', i * data.length, data),
      );
      const stream = Buffer.concat([streamHeader(1), ...writes, END]);
      expect((await rebuild(Buffer.concat([DELTA_MAGIC, stream]), stream)).equals(stream)).toBe(true);
      expect(collect).toHaveBeenCalledTimes(2);
    } finally {
      collect.mockRestore();
    }
  });

  it('rebuilds a batch: a stretch of the plain stream patched against the concatenated predecessors', async () => {
    const old = [Buffer.from('alpha '.repeat(900)), Buffer.from('beta '.repeat(700))];
    await writeFile(join(parent, 'a'), old[0]);
    await writeFile(join(parent, 'b'), old[1]);
    const next = [Buffer.from('alpha '.repeat(880) + 'gamma'), Buffer.from('beta '.repeat(710))];
    const stretch = Buffer.concat([write('a', 0, next[0]), plain(1), write('b', 0, next[1])]);
    const stream = Buffer.concat([streamHeader(1), stretch, END]);
    /** the stretch `target` as the release tool patches it (deploy/release/src/delta/patch-batch.ts) */
    const patchOf = async (target: Buffer) => {
      await writeFile(join(dir, 'sources'), Buffer.concat(old));
      await writeFile(join(dir, 'stretch'), target);
      execFileSync(
        'zstd',
        ['-q', '-f', '-19', '--long=16', `--patch-from=${join(dir, 'sources')}`, join(dir, 'stretch')],
        { stdio: 'ignore' },
      );
      return readFile(join(dir, 'stretch.zst'));
    };
    const batch = (patch: Buffer, targetSize: number, magic = DELTA_MAGIC) =>
      Buffer.concat([
        magic,
        streamHeader(1),
        ...encodeBatchBegin({ sources: 2, targetSize, windowLog: 16, patchSize: patch.length }),
        ...old.flatMap((bytes, i) =>
          encodeBatchSource({ path: ['a', 'b'][i], size: bytes.length, sha256: sha256(bytes) }),
        ),
        ...encodePatchData(patch),
        END,
      ]);
    const patch = await patchOf(stretch);
    // smaller than the stretch: the dictionary did its work
    expect(patch.length * 10).toBeLessThan(stretch.length);
    expect((await rebuild(batch(patch, stretch.length), stream)).equals(stream)).toBe(true);
    // the dictionary was unlinked as soon as it was opened
    expect((await readdir(dir)).filter((name) => name.startsWith('.delta-dictionary'))).toEqual([]);

    // a batch in a format 1 stream is refused
    await expect(rebuild(batch(patch, stretch.length, DELTA_MAGIC_V1), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/batch section in a format 1 delta stream/),
    });
    // a patch decoding to an END would let btrfs receive finish before the sha256 check: refused
    const withEnd = await patchOf(Buffer.concat([stretch, END]));
    await expect(rebuild(batch(withEnd, stretch.length + END.length), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/decodes to a command that is not a plain one \(21/),
    });
    // more or fewer bytes than announced
    await expect(rebuild(batch(patch, stretch.length - 1), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/more bytes than announced/),
    });
    await expect(rebuild(batch(patch, stretch.length + 1), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/fewer bytes than announced/),
    });
    // a predecessor changed since the delta was made: the parent is wrong, nothing is decoded
    await writeFile(join(parent, 'b'), next[1]);
    await expect(rebuild(batch(patch, stretch.length), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaBaseMismatch,
      message: expect.stringMatching(/predecessor b in the parent snapshot has \d+ bytes/),
    });
  });

  it('checks the crcs of a section’s own commands only when the section fails, and reports a mismatch then', async () => {
    const old = Buffer.from('unchanged '.repeat(300));
    await writeFile(join(parent, 'kept'), old);
    const original = write('kept', 0, old);
    const { prefix, suffix } = splitWrite(original.subarray(COMMAND_HEADER_BYTES), 1);
    const stream = Buffer.concat([streamHeader(1), original, END]);
    const begin = (sourcePath: string) =>
      Buffer.concat(
        encodePatchBegin({
          sourcePath,
          sourceSize: old.length,
          sourceSha256: sha256(old),
          targetSize: old.length,
          windowLog: 16,
          stubs: 1,
          patchSize: 0,
        }),
      );
    /** `command` as a damaged copy of it reads: other bytes, the crc still `of`'s */
    const withCrcOf = (command: Buffer, of: Buffer) => {
      const damaged = Buffer.from(command);
      of.copy(damaged, 6, 6, 10);
      return damaged;
    };
    // a file rewritten unchanged: a copy section, no patch
    const copy = (patchBegin: Buffer) =>
      Buffer.concat([
        DELTA_MAGIC_V2,
        streamHeader(1),
        patchBegin,
        ...encodeWriteStub({ prefix, dataLength: old.length, suffix, crc: original.readUInt32LE(6) }),
        END,
      ]);
    expect((await rebuild(copy(begin('kept')), stream)).equals(stream)).toBe(true);
    // only the crc damaged: the section applies, and what it gives is checked with the whole stream's sha256
    const crcOnly = Buffer.from(begin('kept'));
    crcOnly[6] ^= 1;
    expect((await rebuild(copy(crcOnly), stream)).equals(stream)).toBe(true);
    // the path damaged (`kept` → `kepu`): the section fails, and its crc names the cause, not the parent
    await expect(rebuild(copy(begin('kepu')), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaBaseMismatch,
      message: expect.stringMatching(/predecessor kepu in the parent snapshot does not exist/),
    });
    await expect(rebuild(copy(withCrcOf(begin('kepu'), begin('kept'))), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/crc mismatch in a patch section \(its first command\)/),
    });

    // a batch source's sha256 damaged: the second command of its section
    const batchOf = (sourceSha256: string) =>
      Buffer.concat([
        DELTA_MAGIC,
        streamHeader(1),
        ...encodeBatchBegin({ sources: 1, targetSize: original.length, windowLog: 16, patchSize: 1 }),
        ...encodeBatchSource({ path: 'kept', size: old.length, sha256: sourceSha256 }),
        ...encodePatchData(Buffer.from([0])),
        END,
      ]);
    const good = batchOf(sha256(old));
    const damaged = batchOf(sha256(Buffer.from('other')));
    const sourceAt = good.indexOf(Buffer.from('kept')) - COMMAND_HEADER_BYTES - 4;
    good.copy(damaged, sourceAt + 6, sourceAt + 6, sourceAt + 10);
    await expect(rebuild(damaged, stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/crc mismatch in a batch section \(command 2\)/),
    });
    // with valid crcs the same failure is the parent's
    await expect(rebuild(batchOf(sha256(Buffer.from('other'))), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaBaseMismatch,
      message: expect.stringMatching(/predecessor kept in the parent snapshot has other content/),
    });
  });

  it('rebuilds a format 3 patch section from its write runs, and refuses a damaged, cut or misplaced run', async () => {
    const old = Buffer.from(Array.from({ length: 20000 }, (_, i) => `line ${i}\n`).join(''));
    await writeFile(join(parent, 'grown'), old);
    const next = Buffer.concat([old.subarray(0, 40_000), Buffer.from('inserted\n'), old.subarray(40_000)]);
    const writes = [];
    for (let at = 0; at < next.length; at += 48 * 1024)
      writes.push(write('grown', at, next.subarray(at, at + 48 * 1024)));
    const stream = Buffer.concat([streamHeader(1), ...writes, END]);
    const stubs = writes.map((command) => {
      const { prefix, suffix, data } = splitWrite(command.subarray(COMMAND_HEADER_BYTES), 1);
      return { prefix, dataLength: data.length, suffix, crc: command.readUInt32LE(6) };
    });
    await writeFile(join(dir, 'grown.new'), next);
    execFileSync('zstd', [
      '-q',
      '-f',
      '--check',
      '-19',
      '--long=18',
      `--patch-from=${join(parent, 'grown')}`,
      join(dir, 'grown.new'),
    ]);
    const patch = await readFile(join(dir, 'grown.new.zst'));
    const [run] = encodeWriteRuns(stubs).map((parts) => Buffer.concat(parts));
    const begin = (count = stubs.length) =>
      Buffer.concat(
        encodePatchBegin({
          sourcePath: 'grown',
          sourceSize: old.length,
          sourceSha256: sha256(old),
          targetSize: next.length,
          windowLog: 18,
          stubs: count,
          patchSize: patch.length,
        }),
      );
    const section = (runs: Buffer, head = begin(), magic = DELTA_MAGIC) =>
      Buffer.concat([magic, streamHeader(1), head, runs, ...encodePatchData(patch), END]);
    expect(stubs.length).toBeGreaterThan(2);
    expect((await rebuild(section(run), stream)).equals(stream)).toBe(true);
    // a crc in the list damaged (the run's own crc no longer matches): refused before anything is decoded
    const damaged = Buffer.from(run);
    damaged[damaged.length - 1] ^= 1;
    await expect(rebuild(section(damaged), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/patch section for grown: bad write run 0/),
    });
    // more writes in the run than the section announces
    await expect(rebuild(section(run, begin(stubs.length - 1)), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/its write runs hold more writes than announced/),
    });
    // cut inside the run
    const cut = section(run).subarray(0, DELTA_MAGIC.length + 17 + begin().length + 100);
    await expect(rebuild(cut, stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/truncated/),
    });
    // format 2's stubs in a format 3 stream, and a run in a format 2 stream
    const asStubs = Buffer.concat(stubs.flatMap((stub) => encodeWriteStub(stub)));
    expect((await rebuild(section(asStubs, begin(), DELTA_MAGIC_V2), stream)).equals(stream)).toBe(true);
    await expect(rebuild(section(asStubs), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/bad write run 0/),
    });
    await expect(rebuild(section(run, begin(), DELTA_MAGIC_V2), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/bad write stub 0/),
    });
  });

  it('refuses a stream that is no delta, naming what it starts with', async () => {
    const stream = Buffer.concat([streamHeader(1), END]);
    await expect(rebuild(Buffer.concat([Buffer.from('cowroot-delta/9\n'), stream]), stream)).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/not a cowroot delta stream \(starts with "cowroot-delta\/9\\n"\)/),
    });
  });
});
