import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '@cowroot/device';
import { ArtifactDownloader } from './artifact-downloader';

const BODY = randomBytes(3 * 1024 * 1024 + 17);
const SHA = createHash('sha256').update(BODY).digest('hex');
const AUTH = `Basic ${Buffer.from('dev-1:secret-credential').toString('base64')}`;

interface ServerBehaviour {
  /** the first N requests are cut after this many body bytes */
  dropAfter?: number;
  drops?: number;
  ignoreRange?: boolean;
  body?: Buffer;
  status?: number;
}

async function serve(
  behaviour: ServerBehaviour,
): Promise<{ url: string; server: Server; requests: Array<{ range?: string; auth?: string }> }> {
  const requests: Array<{ range?: string; auth?: string }> = [];
  let drops = behaviour.drops ?? 0;
  const body = behaviour.body ?? BODY;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ range: req.headers.range, auth: req.headers.authorization });
    if (req.headers.authorization !== AUTH) {
      res.writeHead(401).end();
      return;
    }
    if (behaviour.status) {
      res.writeHead(behaviour.status).end();
      return;
    }
    let start = 0;
    const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (match && !behaviour.ignoreRange) {
      start = Number(match[1]);
      res.writeHead(206, {
        'Content-Length': body.length - start,
        'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
      });
    } else {
      res.writeHead(200, { 'Content-Length': body.length });
    }
    const rest = body.subarray(start);
    if (drops > 0 && behaviour.dropAfter !== undefined) {
      drops -= 1;
      res.write(rest.subarray(0, behaviour.dropAfter), () => {
        // mid-body: the client must see an incomplete response, not a clean end
        setTimeout(() => req.socket.destroy(), 20);
      });
      return;
    }
    res.end(rest);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/artifacts/a.btrfs.zst`, server, requests };
}

describe(ArtifactDownloader.name, () => {
  let dir: string;
  let server: Server | null = null;
  const downloader = new ArtifactDownloader({
    retries: 3,
    initialBackoffMs: 20,
    maxBackoffMs: 100,
    idleTimeoutMs: 2000,
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-download-'));
  });

  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = null;
    await rm(dir, { recursive: true, force: true });
  });

  async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
    const error = await promise.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as DeviceError).code).toBe(code);
  }

  it('resumes with Range after the connection drops mid-body; bytes and hash identical', async () => {
    const served = await serve({ dropAfter: 1024 * 1024, drops: 2 });
    server = served.server;
    const destination = join(dir, 'spool');
    const progress: number[] = [];
    const result = await downloader.download({
      url: served.url,
      allowedOrigin: new URL(served.url).origin,
      destination,
      expectedSize: BODY.length,
      username: 'dev-1',
      password: 'secret-credential',
      onProgress: (done) => progress.push(done),
    });
    expect(result.attempts).toBe(3);
    expect(result.sha256).toBe(SHA);
    expect(result.size).toBe(BODY.length);
    // nothing fetched twice
    expect(result.bytesTransferred).toBe(BODY.length);
    expect(Buffer.compare(await readFile(destination), BODY)).toBe(0);
    // each retry asks for exactly what is not on disk yet; where the cuts fall depends on how much of the
    // cut response the client had read when the socket closed, so only the shape is fixed
    const ranges = served.requests.map((r) => r.range);
    expect(ranges).toHaveLength(3);
    expect(ranges[0]).toBeUndefined();
    const starts = ranges.slice(1).map((range) => Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1]));
    expect(starts[0]).toBeGreaterThan(0);
    expect(starts[1]).toBeGreaterThan(starts[0]);
    expect(starts[1]).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(served.requests.every((r) => r.auth === AUTH)).toBe(true);
    expect(progress.at(-1)).toBe(BODY.length);
  });

  it('continues a spool an earlier run left behind: rehashed, then one Range request for the rest', async () => {
    const served = await serve({});
    server = served.server;
    const destination = join(dir, 'spool');
    await writeFile(destination, BODY.subarray(0, 1_234_567));
    const request = {
      url: served.url,
      allowedOrigin: new URL(served.url).origin,
      destination,
      expectedSize: BODY.length,
      username: 'dev-1',
      password: 'secret-credential',
    };
    const result = await downloader.download(request);
    expect(result).toMatchObject({
      sha256: SHA,
      size: BODY.length,
      bytesResumed: 1_234_567,
      bytesTransferred: BODY.length - 1_234_567,
    });
    expect(served.requests.map((r) => r.range)).toEqual(['bytes=1234567-']);
    expect(Buffer.compare(await readFile(destination), BODY)).toBe(0);

    // a complete spool: nothing left to fetch, the hash still covers every byte
    const again = await downloader.download(request);
    expect(again).toMatchObject({ sha256: SHA, bytesResumed: BODY.length, bytesTransferred: 0 });
  });

  it('starts over when the spool left behind is longer than the artifact', async () => {
    const served = await serve({});
    server = served.server;
    const destination = join(dir, 'spool');
    await writeFile(destination, Buffer.alloc(BODY.length + 10, 1));
    const result = await downloader.download({
      url: served.url,
      allowedOrigin: new URL(served.url).origin,
      destination,
      expectedSize: BODY.length,
      username: 'dev-1',
      password: 'secret-credential',
    });
    expect(result).toMatchObject({ sha256: SHA, bytesResumed: 0, bytesTransferred: BODY.length });
    expect(served.requests.map((r) => r.range)).toEqual([undefined]);
  });

  it('starts over when the server ignores Range, without duplicating bytes', async () => {
    const served = await serve({ dropAfter: 500_000, drops: 1, ignoreRange: true });
    server = served.server;
    const destination = join(dir, 'spool');
    const result = await downloader.download({
      url: served.url,
      allowedOrigin: new URL(served.url).origin,
      destination,
      expectedSize: BODY.length,
      username: 'dev-1',
      password: 'secret-credential',
    });
    expect(result.sha256).toBe(SHA);
    expect(Buffer.compare(await readFile(destination), BODY)).toBe(0);
  });

  it('fails at once with DOWNLOAD_FAILED on a refused credential', async () => {
    const served = await serve({});
    server = served.server;
    await expectCode(
      downloader.download({
        url: served.url,
        allowedOrigin: new URL(served.url).origin,
        destination: join(dir, 'spool'),
        expectedSize: BODY.length,
        username: 'dev-1',
        password: 'wrong-password',
      }),
      ErrorCode.DownloadFailed,
    );
    expect(served.requests).toHaveLength(1);
  });

  it('refuses more bytes than the manifest announces (SIZE_MISMATCH) and a short artifact', async () => {
    const served = await serve({});
    server = served.server;
    await expectCode(
      downloader.download({
        url: served.url,
        allowedOrigin: new URL(served.url).origin,
        destination: join(dir, 'a'),
        expectedSize: BODY.length - 1,
        username: 'dev-1',
        password: 'secret-credential',
      }),
      ErrorCode.SizeMismatch,
    );
    await expectCode(
      downloader.download({
        url: served.url,
        allowedOrigin: new URL(served.url).origin,
        destination: join(dir, 'b'),
        expectedSize: BODY.length + 1,
        username: 'dev-1',
        password: 'secret-credential',
      }),
      ErrorCode.SizeMismatch,
    );
  });

  it('gives up with DOWNLOAD_FAILED after bounded retries when the server is gone', async () => {
    const served = await serve({});
    const url = served.url;
    await new Promise<void>((resolve) => served.server.close(() => resolve()));
    const started = Date.now();
    await expectCode(
      downloader.download({
        url,
        allowedOrigin: new URL(url).origin,
        destination: join(dir, 'spool'),
        expectedSize: 10,
        username: 'dev-1',
        password: 'secret-credential',
      }),
      ErrorCode.DownloadFailed,
    );
    // 20 + 40 + 80 ms of backoff, not forever
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('retries a 503 and stops on abort with CANCELED', async () => {
    const served = await serve({ status: 503 });
    server = served.server;
    const abort = new AbortController();
    const slow = new ArtifactDownloader({ retries: 100, initialBackoffMs: 50, maxBackoffMs: 50, idleTimeoutMs: 1000 });
    setTimeout(() => abort.abort(), 300);
    await expectCode(
      slow.download({
        url: served.url,
        allowedOrigin: new URL(served.url).origin,
        destination: join(dir, 'spool'),
        expectedSize: 10,
        username: 'dev-1',
        password: 'secret-credential',
        signal: abort.signal,
      }),
      ErrorCode.Canceled,
    );
    expect(served.requests.length).toBeGreaterThan(1);
  });

  it('refuses a URL outside the pinned origin before any request: another port, scheme or host, user info', async () => {
    const pinned = await serve({});
    server = pinned.server;
    const other = await serve({});
    try {
      const request = {
        allowedOrigin: new URL(pinned.url).origin,
        destination: join(dir, 'spool'),
        expectedSize: BODY.length,
        username: 'dev-1',
        password: 'secret-credential',
      };
      const otherPort = new URL(pinned.url).port === new URL(other.url).port ? null : other.url;
      expect(otherPort).not.toBeNull();
      for (const url of [
        otherPort!,
        pinned.url.replace('http://', 'https://'),
        pinned.url.replace('127.0.0.1', 'localhost'),
        pinned.url.replace('http://', 'http://dev-1:secret@'),
        'file:///etc/passwd',
        'not a url',
      ]) {
        await expectCode(downloader.download({ ...request, url }), ErrorCode.UntrustedUrl);
      }
      // the credential went nowhere, and nothing was written
      expect(other.requests).toEqual([]);
      expect(pinned.requests).toEqual([]);
      await expect(readFile(request.destination)).rejects.toMatchObject({ code: 'ENOENT' });
      // the pinned origin itself works
      const ok = await downloader.download({ ...request, url: pinned.url });
      expect(ok.sha256).toBe(SHA);
    } finally {
      await new Promise<void>((resolve) => other.server.close(() => resolve()));
    }
  });
});
