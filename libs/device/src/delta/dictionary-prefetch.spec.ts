import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@cowroot/protocol';
import { DELTA_MAGIC, encodeBatchBegin, encodeBatchSource, encodePatchData } from './delta-format';
import { DeltaReconstructor } from './delta-reconstructor';
import { DictionaryPrefetch, nextBatchHint } from './dictionary-prefetch';
import { SendAttr, SendCommand, frameCommand, streamHeader, tlv } from './send-stream';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const u64 = (value: number) => {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
};
const plain = (i: number) => Buffer.concat(frameCommand(20, [tlv(SendAttr.Path, Buffer.from(`file-${i}`))]));
const write = (path: string, data: Buffer) =>
  Buffer.concat(
    frameCommand(SendCommand.Write, [
      tlv(SendAttr.Path, Buffer.from(path)),
      tlv(SendAttr.FileOffset, u64(0)),
      tlv(SendAttr.Data, data),
    ]),
  );
const END = Buffer.concat(frameCommand(SendCommand.End, []));
const openDescriptors = () => readdirSync('/proc/self/fd').length;

async function* chunked(bytes: Buffer, size = 4096): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

describe(DictionaryPrefetch.name, () => {
  let dir: string;
  let parent: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-prefetch-'));
    parent = join(dir, 'parent');
    await mkdir(parent);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** One batch as the release tool writes it: its stretch patched against its predecessors concatenated. */
  async function batch(sources: Record<string, Buffer>, stretch: Buffer): Promise<Buffer[]> {
    const names = Object.keys(sources);
    await writeFile(join(dir, 'sources'), Buffer.concat(names.map((name) => sources[name])));
    await writeFile(join(dir, 'stretch'), stretch);
    execFileSync(
      'zstd',
      ['-q', '-f', '-19', '--long=16', `--patch-from=${join(dir, 'sources')}`, join(dir, 'stretch')],
      {
        stdio: 'ignore',
      },
    );
    const patch = await readFile(join(dir, 'stretch.zst'));
    return [
      ...encodeBatchBegin({
        sources: names.length,
        targetSize: stretch.length,
        windowLog: 16,
        patchSize: patch.length,
      }),
      ...names.flatMap((name) =>
        encodeBatchSource({ path: name, size: sources[name].length, sha256: sha256(sources[name]) }),
      ),
      ...encodePatchData(patch),
    ];
  }

  /** Two batches with a few plain commands between them (what a package upgrade's stream looks like). */
  async function twoBatches() {
    const old = {
      a: Buffer.from('alpha '.repeat(900)),
      b: Buffer.from('beta '.repeat(700)),
      c: Buffer.from('gamma '.repeat(800)),
      d: Buffer.from('delta '.repeat(600)),
    };
    for (const [name, bytes] of Object.entries(old)) await writeFile(join(parent, name), bytes);
    const first = Buffer.concat([write('a', Buffer.from('alpha '.repeat(880) + 'x')), plain(1), write('b', old.b)]);
    const second = Buffer.concat([write('c', Buffer.from('gamma '.repeat(810))), write('d', Buffer.from('d'))]);
    const between = Buffer.concat([plain(2), plain(3)]);
    const stream = Buffer.concat([streamHeader(1), first, between, second, END]);
    const delta = Buffer.concat([
      DELTA_MAGIC,
      streamHeader(1),
      ...(await batch({ a: old.a, b: old.b }, first)),
      between,
      ...(await batch({ c: old.c, d: old.d }, second)),
      END,
    ]);
    return { old, stream, delta };
  }

  const reconstructor = (expected: Buffer) =>
    new DeltaReconstructor({
      parentRoot: parent,
      expected: { size: expected.length, sha256: sha256(expected) },
      scratchDir: dir,
    });

  it('finds the next batch’s sources after plain commands, and nothing where no batch lies whole', async () => {
    const sources = { c: Buffer.from('gamma'), d: Buffer.from('delta') };
    const section = Buffer.concat(await batch(sources, write('c', Buffer.from('gamma!'))));
    const view = Buffer.concat([plain(1), plain(2), section]);
    expect(nextBatchHint(view)).toEqual({
      sources: [
        { sourcePath: 'c', sourceSize: 5, sourceSha256: sha256(sources.c) },
        { sourcePath: 'd', sourceSize: 5, sourceSha256: sha256(sources.d) },
      ],
      windowLog: 16,
    });
    // cut inside its sources, or another section (the END) first: no hint
    const beginLength = Buffer.concat(
      encodeBatchBegin({ sources: 2, targetSize: 1, windowLog: 16, patchSize: 1 }),
    ).length;
    expect(nextBatchHint(view.subarray(0, plain(1).length * 2 + beginLength + 20))).toBeNull();
    expect(nextBatchHint(Buffer.concat([plain(1), END, section]))).toBeNull();
    // no crc is checked (the batch checks them if it fails): a bad crc alone is the same hint, damaged
    // attributes are none or another one, which the batch then does not take
    const badCrc = Buffer.from(view);
    badCrc[plain(1).length * 2 + 6] ^= 0xff;
    expect(nextBatchHint(badCrc)).toEqual(nextBatchHint(view));
    const bad = Buffer.from(view);
    bad[plain(1).length * 2 + 12] ^= 0xff;
    expect(nextBatchHint(bad)).not.toEqual(nextBatchHint(view));
  });

  it('writes the second batch’s dictionary while the first decodes, and rebuilds the stream exactly', async () => {
    const { stream, delta } = await twoBatches();
    const rebuilder = reconstructor(stream);
    expect((await collect(rebuilder.plainStream(chunked(delta)))).equals(stream)).toBe(true);
    expect(rebuilder.batches).toEqual({ taken: 2, prefetched: 1 });
    expect((await readdir(dir)).filter((name) => name.startsWith('.delta-dictionary'))).toEqual([]);
  });

  it('a predecessor of the next batch with other content fails that batch’s decode, named as DELTA_BASE_MISMATCH, and leaks nothing', async () => {
    const { old, stream, delta } = await twoBatches();
    const before = openDescriptors();
    // same size, other content: located fine and written ahead unhashed; the decode against it fails
    // its frame's checksum, and only then are the batch's sources hashed, to name the one at fault
    await writeFile(join(parent, 'c'), Buffer.alloc(old.c.length, 0x21));
    const rebuilder = reconstructor(stream);
    await expect(collect(rebuilder.plainStream(chunked(delta)))).rejects.toMatchObject({
      code: ErrorCode.DeltaBaseMismatch,
      message: expect.stringMatching(/predecessor c in the parent snapshot has other content/),
    });
    expect(rebuilder.batches).toEqual({ taken: 2, prefetched: 1 });
    await writeFile(join(parent, 'c'), old.c);
    // other bytes where the patch takes none (d's new content is one byte of its own): the stream
    // rebuilt is still exactly the original, as its sha256 checked at END says, and that is what counts
    await writeFile(join(parent, 'd'), Buffer.alloc(old.d.length, 0x21));
    expect((await collect(reconstructor(stream).plainStream(chunked(delta)))).equals(stream)).toBe(true);
    // missing altogether
    await rm(join(parent, 'd'));
    await expect(collect(reconstructor(stream).plainStream(chunked(delta)))).rejects.toMatchObject({
      code: ErrorCode.DeltaBaseMismatch,
      message: expect.stringMatching(/predecessor d in the parent snapshot does not exist/),
    });
    await writeFile(join(parent, 'd'), old.d);
    expect(openDescriptors()).toBe(before);
  });

  it('releases a batch made ready for a stream that never delivers it (truncated delta)', async () => {
    const { stream, delta } = await twoBatches();
    const before = openDescriptors();
    // cut in the second batch's patch data: its sources were seen ahead, its dictionary written
    const cut = delta.subarray(0, delta.length - END.length - 30);
    const rebuilder = reconstructor(stream);
    await expect(collect(rebuilder.plainStream(chunked(cut)))).rejects.toMatchObject({
      code: ErrorCode.DeltaCorrupt,
      message: expect.stringMatching(/truncated/),
    });
    // one written ahead for other sources than the batch names is closed, and the batch's written anew
    const written: string[] = [];
    const prefetch = new DictionaryPrefetch<number>(async ({ sources }) => {
      written.push(sources[0].sourcePath);
      return openSync('/dev/null', 'r');
    }, closeSync);
    const hint = (path: string, windowLog = 16) => ({
      sources: [{ sourcePath: path, sourceSize: 1, sourceSha256: '00' }],
      windowLog,
    });
    prefetch.start(hint('c'));
    closeSync(await prefetch.take(hint('a')));
    // same sources, another window: not the same batch either
    prefetch.start(hint('a'));
    closeSync(await prefetch.take(hint('a', 17)));
    expect(written).toEqual(['c', 'a', 'a', 'a']);
    expect(prefetch.stats).toEqual({ taken: 2, prefetched: 0 });
    // (give the closes a turn)
    await new Promise((resolve) => setImmediate(resolve));
    expect(openDescriptors()).toBe(before);
  });
});
