import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ByteLimitExceededError, writeStreamHashed } from './hashing-file-writer';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A source that yields `chunks` and then, a little later, fails like an aborted HTTP request. */
function abortingSource(chunks: Buffer[]): Readable {
  return new Readable({
    read() {
      const next = chunks.shift();
      if (next) this.push(next);
      else setTimeout(() => this.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })), 50);
    },
  });
}

describe('writeStreamHashed', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cowroot-writer-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the bytes and reports their size and sha256', async () => {
    const data = randomBytes(3 * 65536 + 17);
    const path = join(dir, 'out');
    let counted = 0;
    const result = await writeStreamHashed(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), path, {
      flags: 'w',
      maxBytes: data.length,
      removeOnError: true,
      onBytes: (n) => (counted += n),
    });
    expect(result).toEqual({ bytes: data.length, sha256: sha256(data) });
    expect(counted).toBe(data.length);
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('appends to a partial file and hashes only the new bytes', async () => {
    const path = join(dir, 'out');
    const first = randomBytes(1000);
    const second = randomBytes(2000);
    await writeStreamHashed(Readable.from([first]), path, { flags: 'w', maxBytes: 5000, removeOnError: false });
    const result = await writeStreamHashed(Readable.from([second]), path, {
      flags: 'a',
      maxBytes: 5000,
      removeOnError: false,
    });
    expect(result).toEqual({ bytes: 2000, sha256: sha256(second) });
    expect(readFileSync(path).equals(Buffer.concat([first, second]))).toBe(true);
  });

  it('stops at the byte limit and removes the file', async () => {
    const path = join(dir, 'out');
    const write = writeStreamHashed(Readable.from([randomBytes(600), randomBytes(600)]), path, {
      flags: 'w',
      maxBytes: 1000,
      removeOnError: true,
    });
    await expect(write).rejects.toBeInstanceOf(ByteLimitExceededError);
    expect(existsSync(path)).toBe(false);
  });

  it('removes the file when the source aborts mid-stream', async () => {
    const path = join(dir, 'out');
    const write = writeStreamHashed(abortingSource([randomBytes(5000)]), path, {
      flags: 'w',
      maxBytes: 1e6,
      removeOnError: true,
    });
    await expect(write).rejects.toThrow('aborted');
    expect(existsSync(path)).toBe(false);
  });

  it('keeps the received prefix of an aborted resumable write', async () => {
    const path = join(dir, 'out');
    const prefix = randomBytes(5000);
    await expect(
      writeStreamHashed(abortingSource([prefix]), path, { flags: 'w', maxBytes: 1e6, removeOnError: false }),
    ).rejects.toThrow('aborted');
    expect(readFileSync(path).equals(prefix)).toBe(true);
  });

  it('reports a full disk as ENOSPC and removes the partial (a link to /dev/full, a real ENOSPC)', async () => {
    const path = join(dir, 'out');
    symlinkSync('/dev/full', path);
    const write = writeStreamHashed(Readable.from([randomBytes(100000)]), path, {
      flags: 'w',
      maxBytes: 1e6,
      removeOnError: true,
    });
    await expect(write).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(existsSync(path)).toBe(false);
    expect(existsSync('/dev/full')).toBe(true);
  });
});
