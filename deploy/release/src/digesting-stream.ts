import { createHash, Hash } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';

/** Pass-through that counts bytes and hashes them on the way to the file, so nothing is read twice or held. */
export class DigestingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  /** Valid once the stream has finished. */
  result(): { size: number; sha256: string } {
    return { size: this.bytes, sha256: this.hash.copy().digest('hex') };
  }
}
