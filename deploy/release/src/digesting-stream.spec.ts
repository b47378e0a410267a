import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestingStream } from './digesting-stream';

describe(DigestingStream.name, () => {
  it('passes every byte through while counting and hashing them', async () => {
    const chunks = [Buffer.from('btrfs-'), Buffer.alloc(70000, 7), Buffer.from('stream')];
    const received: Buffer[] = [];
    const digest = new DigestingStream();
    await pipeline(
      Readable.from(chunks),
      digest,
      new Writable({ write: (chunk: Buffer, _e, next) => (received.push(chunk), next()) }),
    );
    const all = Buffer.concat(chunks);
    expect(Buffer.concat(received).equals(all)).toBe(true);
    expect(digest.result()).toEqual({ size: all.length, sha256: createHash('sha256').update(all).digest('hex') });
  });
});
