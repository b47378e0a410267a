import { createHash, Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, FileHandle } from 'node:fs/promises';
import { request as httpRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ErrorCode } from '@cowroot/protocol';
import { DeviceError, collectYoungGarbage } from '@cowroot/device';

/** bytes written between two young-generation collections (see collectYoungGarbage) */
const COLLECT_EVERY_BYTES = 1024 * 1024;

export interface DownloadRequest {
  url: string;
  /**
   * the only origin (scheme://host[:port]) the artifact may come from: the configured server's. Any
   * other URL is refused before a connection is made, so the credential never goes anywhere else.
   */
  allowedOrigin: string;
  /**
   * file the artifact is spooled to. A file already there (left by an interrupted earlier run) is taken
   * as the first bytes of the artifact: hashed again and continued with a Range request; the caller's
   * sha256 check against the signed manifest judges the result as always.
   */
  destination: string;
  /** the exact size the signed manifest gives: more bytes are refused while they arrive */
  expectedSize: number;
  username: string;
  password: string;
  ca?: Buffer | null;
  signal?: AbortSignal;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

export interface DownloadResult {
  sha256: string;
  size: number;
  /** bytes that came over the network, resumes included (a resume does not fetch the same bytes twice) */
  bytesTransferred: number;
  /** bytes found in the destination from an earlier run and not fetched again */
  bytesResumed: number;
  attempts: number;
}

export interface DownloaderOptions {
  /** consecutive failed attempts (no new byte) before giving up */
  retries: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  idleTimeoutMs: number;
}

/** What is on disk so far: the hash covers exactly the first `written` bytes of the spool file. */
interface SpoolProgress {
  hash: Hash;
  written: number;
  transferred: number;
}

/** An attempt failed in a way that trying again cannot fix (401, 404, full disk, too many bytes). */
class FatalDownloadError extends DeviceError {}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(canceled());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(canceled());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function canceled(): FatalDownloadError {
  return new FatalDownloadError(ErrorCode.Canceled, 'download canceled');
}

/** `bytes 100-199/1000` → 100 */
function contentRangeStart(header: string | undefined): number | null {
  const match = header ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header.trim()) : null;
  return match ? Number(match[1]) : null;
}

/**
 * The artifact URL, when it is on the pinned origin (docs/agent.md §4.1): same scheme, host and port as the
 * configured server, no user info. A compromised server or a forged command cannot send the device (and
 * its credential) anywhere else. Redirects are never followed (node's http client does not).
 */
export function pinnedUrl(text: string, allowedOrigin: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new DeviceError(
      ErrorCode.UntrustedUrl,
      `the artifact URL ${JSON.stringify(text.slice(0, 256))} is not a URL`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DeviceError(ErrorCode.UntrustedUrl, `unsupported artifact URL scheme ${url.protocol}`);
  }
  if (url.origin !== new URL(allowedOrigin).origin || url.username || url.password) {
    throw new DeviceError(
      ErrorCode.UntrustedUrl,
      `the artifact URL's origin ${url.origin} is not the configured server ${new URL(allowedOrigin).origin}; refused without a request`,
    );
  }
  return url;
}

/**
 * Downloads one artifact to a spool file with HTTP Basic auth, hashing every byte as it is written, and
 * resuming with `Range: bytes=<have>-` after a dropped connection. It never writes past the expected
 * size, so a hostile server cannot fill the pool. It does not judge the content: the caller compares
 * sha256 and size with the signed manifest before anything reaches btrfs.
 */
export class ArtifactDownloader {
  constructor(private readonly options: DownloaderOptions) {}

  async download(request: DownloadRequest): Promise<DownloadResult> {
    const url = pinnedUrl(request.url, request.allowedOrigin);
    const { file, progress } = await this.openSpool(request);
    const bytesResumed = progress.written;
    let attempts = 0;
    let failuresWithoutProgress = 0;
    let backoff = this.options.initialBackoffMs;
    try {
      for (;;) {
        if (request.signal?.aborted) throw canceled();
        attempts += 1;
        const before = progress.written;
        try {
          await this.attempt(url, request, file, progress);
          await file.sync();
          return {
            sha256: progress.hash.digest('hex'),
            size: progress.written,
            bytesTransferred: progress.transferred,
            bytesResumed,
            attempts,
          };
        } catch (error) {
          if (error instanceof FatalDownloadError) throw error;
          if (request.signal?.aborted) throw canceled();
          if (progress.written > before) {
            failuresWithoutProgress = 0;
            backoff = this.options.initialBackoffMs;
          } else {
            failuresWithoutProgress += 1;
          }
          if (failuresWithoutProgress > this.options.retries) {
            throw new DeviceError(
              ErrorCode.DownloadFailed,
              `download failed after ${attempts} attempts (${progress.written} of ${request.expectedSize} bytes): ${(error as Error).message}`,
              { cause: error },
            );
          }
          await sleep(backoff, request.signal);
          backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
        }
      }
    } finally {
      await file.close();
    }
  }

  /**
   * Opens the spool, keeping what an earlier run left in it: its bytes are hashed again (one reused
   * buffer) so the hash covers the whole file. More bytes than expected cannot be a prefix: start over.
   */
  private async openSpool(request: DownloadRequest): Promise<{ file: FileHandle; progress: SpoolProgress }> {
    const progress: SpoolProgress = { hash: createHash('sha256'), written: 0, transferred: 0 };
    let file: FileHandle;
    try {
      file = await open(request.destination, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return { file: await open(request.destination, 'w', 0o600), progress };
    }
    try {
      const { size } = await file.stat();
      if (size > request.expectedSize) {
        await file.truncate(0);
        return { file, progress };
      }
      const buffer = Buffer.allocUnsafe(1024 * 1024);
      while (progress.written < size) {
        const { bytesRead } = await file.read(
          buffer,
          0,
          Math.min(buffer.length, size - progress.written),
          progress.written,
        );
        if (bytesRead === 0) break;
        progress.hash.update(buffer.subarray(0, bytesRead));
        progress.written += bytesRead;
      }
      await file.truncate(progress.written);
      return { file, progress };
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  /** One HTTP request, from progress.written on; resolves when the whole expected size is on disk. */
  private attempt(url: URL, request: DownloadRequest, file: FileHandle, progress: SpoolProgress): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const headers: Record<string, string> = {
        Authorization: `Basic ${Buffer.from(`${request.username}:${request.password}`).toString('base64')}`,
        'Accept-Encoding': 'identity',
      };
      if (progress.written > 0) headers.Range = `bytes=${progress.written}-`;
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      let settled = false;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        request.signal?.removeEventListener('abort', onAbort);
        req.destroy();
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => finish(canceled());
      const req = send(url, {
        method: 'GET',
        headers,
        ...(request.ca ? { ca: request.ca } : {}),
        timeout: this.options.idleTimeoutMs,
      });
      request.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('timeout', () => finish(new Error(`no data for ${this.options.idleTimeoutMs} ms`)));
      req.on('error', (error) => finish(error));
      req.on('response', (response: IncomingMessage) => {
        this.handleResponse(response, request, file, progress).then(
          () => finish(),
          (error: Error) => finish(error),
        );
      });
      req.end();
    });
  }

  private async handleResponse(
    response: IncomingMessage,
    request: DownloadRequest,
    file: FileHandle,
    progress: SpoolProgress,
  ): Promise<void> {
    const status = response.statusCode ?? 0;
    if (status === 416 && progress.written === request.expectedSize) {
      response.resume();
      return;
    }
    if (status === 200 && progress.written > 0) {
      // the server ignored Range: start over (truncate, rehash) rather than append a second copy
      await file.truncate(0);
      progress.hash = createHash('sha256');
      progress.written = 0;
    } else if (status === 206) {
      const start = contentRangeStart(response.headers['content-range']);
      if (start !== progress.written) {
        response.resume();
        throw new Error(
          `server answered Range ${progress.written}- with Content-Range ${response.headers['content-range']}`,
        );
      }
    } else if (status !== 200) {
      response.resume();
      const message = `HTTP ${status} for ${request.url}`;
      // 408, 429 and 5xx may heal; other 4xx (401 bad credential, 404) will not
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        throw new FatalDownloadError(ErrorCode.DownloadFailed, message);
      }
      throw new Error(message);
    }

    let sinceCollect = 0;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      progress.transferred += chunk.length;
      if (progress.written + chunk.length > request.expectedSize) {
        throw new FatalDownloadError(
          ErrorCode.SizeMismatch,
          `the server sent more than the ${request.expectedSize} bytes the manifest announces`,
        );
      }
      try {
        await file.write(chunk, 0, chunk.length, progress.written);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOSPC' || code === 'EDQUOT') {
          throw new FatalDownloadError(ErrorCode.DiskFull, `no space left for the download spool (${code})`);
        }
        throw new FatalDownloadError(ErrorCode.DownloadFailed, `writing the spool file: ${(error as Error).message}`);
      }
      progress.hash.update(chunk);
      progress.written += chunk.length;
      request.onProgress?.(progress.written, request.expectedSize);
      sinceCollect += chunk.length;
      if (sinceCollect >= COLLECT_EVERY_BYTES) {
        sinceCollect = 0;
        collectYoungGarbage();
      }
    }
    if (!response.complete) throw new Error(`connection closed after ${progress.written} bytes`);
    if (progress.written < request.expectedSize) {
      // a complete response that is short: the artifact on the server is not the one the manifest describes
      throw new FatalDownloadError(
        ErrorCode.SizeMismatch,
        `the server's artifact has ${progress.written} bytes, the manifest says ${request.expectedSize}`,
      );
    }
  }
}

/** sha256 of a file, for tests and for a resumed spool whose hash state was lost. */
export async function sha256OfFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) hash.update(chunk);
  return { sha256: hash.digest('hex'), size: (await stat(path)).size };
}
