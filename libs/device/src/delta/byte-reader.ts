/**
 * Exact-length reads from a byte stream (a child's stdout): the parsers pull a command header, then its
 * payload. Holds at most one chunk beyond what was asked for, so memory follows the largest command.
 */
export class ByteReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  private async fill(wanted: number): Promise<void> {
    while (this.buffered < wanted && !this.ended) {
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        break;
      }
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
  }

  /** `length` bytes, or fewer only when the stream ended first. */
  async read(length: number): Promise<Buffer> {
    await this.fill(length);
    const take = Math.min(length, this.buffered);
    if (take === 0) return Buffer.alloc(0);
    let out: Buffer;
    if (this.chunks[0].length >= take) {
      out = this.chunks[0].subarray(0, take);
      this.chunks[0] = this.chunks[0].subarray(take);
      if (this.chunks[0].length === 0) this.chunks.shift();
    } else {
      out = Buffer.allocUnsafe(take);
      let at = 0;
      while (at < take) {
        const chunk = this.chunks[0];
        const n = Math.min(chunk.length, take - at);
        chunk.copy(out, at, 0, n);
        at += n;
        if (n === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(n);
      }
    }
    this.buffered -= take;
    return out;
  }

  /**
   * A view of at least `length` buffered bytes (fewer only at the end), consuming nothing: whatever is
   * already buffered in the first chunk, so a caller can walk many small commands in it and then take
   * them with one read() — a subarray, no copy. Chunks are joined only when the first is shorter.
   */
  async peek(length: number): Promise<Buffer> {
    await this.fill(length);
    if (this.chunks.length === 0) return Buffer.alloc(0);
    if (this.chunks[0].length < length && this.chunks.length > 1) {
      this.chunks = [Buffer.concat(this.chunks)];
    }
    return this.chunks[0];
  }

  /** True when nothing is left (reads ahead at most one chunk). */
  async atEnd(): Promise<boolean> {
    await this.fill(1);
    return this.buffered === 0;
  }

  /** Stops the source (its iterator's return: a stream is destroyed). */
  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}
