import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** The source sent more bytes than the writer was allowed to take. */
export class ByteLimitExceededError extends Error {
  constructor(readonly limit: number) {
    super(`stream exceeds ${limit} bytes`);
    this.name = 'ByteLimitExceededError';
  }
}

export interface HashedWriteOptions {
  /** 'w' starts a new file, 'a' appends to a partial one (resumable uploads) */
  flags: 'w' | 'a';
  /** at most this many bytes are taken from the source; more is an error */
  maxBytes: number;
  /** delete the file when anything goes wrong (one-shot uploads); resumable ones keep the prefix */
  removeOnError: boolean;
  /** called with each chunk's length as it is written, e.g. for a bytes counter */
  onBytes?: (bytes: number) => void;
}

export interface HashedWriteResult {
  /** bytes taken from the source by this call */
  bytes: number;
  /** sha256 (hex) of those bytes */
  sha256: string;
}

/**
 * Pipes a stream into a file while counting and hashing it, with back-pressure end to end so the
 * memory used stays at a few stream buffers whatever the size. The file is flushed to disk (fsync)
 * before the promise resolves. A source that errors or closes early (client aborted) rejects.
 *
 * The source is piped, not handed to pipeline(): when the write fails (limit, full disk) the source
 * is only unpiped, never destroyed, because destroying an HTTP request destroys its socket and the
 * client would get a reset instead of the error response.
 */
export async function writeStreamHashed(
  source: Readable,
  path: string,
  options: HashedWriteOptions,
): Promise<HashedWriteResult> {
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      bytes += chunk.length;
      if (bytes > options.maxBytes) {
        callback(new ByteLimitExceededError(options.maxBytes));
        return;
      }
      hash.update(chunk);
      options.onBytes?.(chunk.length);
      callback(null, chunk);
    },
  });
  const onSourceError = (error: Error) => meter.destroy(error);
  const onSourceClose = () => {
    if (!source.readableEnded)
      meter.destroy(Object.assign(new Error('the stream closed before its end (aborted)'), { code: 'ECONNRESET' }));
  };
  source.on('error', onSourceError);
  source.on('close', onSourceClose);
  const written = pipeline(meter, createWriteStream(path, { flags: options.flags, flush: true }));
  source.pipe(meter);
  try {
    await written;
  } catch (error) {
    source.unpipe(meter);
    if (options.removeOnError) await rm(path, { force: true });
    throw error;
  } finally {
    source.off('error', onSourceError);
    source.off('close', onSourceClose);
  }
  return { bytes, sha256: hash.digest('hex') };
}
