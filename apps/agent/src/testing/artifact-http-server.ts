import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo, Socket } from 'node:net';

export type ServeMode =
  | { kind: 'normal' }
  /** cut the connection after `afterBytes` body bytes, `times` times, then serve normally */
  | { kind: 'drop'; afterBytes: number; times: number }
  /** send `afterBytes`, then cut the connection and close the whole server (it never comes back) */
  | { kind: 'vanish'; afterBytes: number }
  /** send slowly: `bytesPerTick` every 50 ms */
  | { kind: 'throttle'; bytesPerTick: number };

interface Served {
  file: string;
  mode: ServeMode;
}

/**
 * A stand-in for the server's artifact endpoint: files by path, HTTP Basic auth, Range requests, and the
 * failure modes the agent must survive. Loopback only.
 */
export class ArtifactHttpServer {
  private readonly server: Server;
  private readonly files = new Map<string, Served>();
  private readonly sockets = new Set<Socket>();
  readonly requests: Array<{ path: string; range?: string; authorized: boolean }> = [];
  private port = 0;

  constructor(
    private readonly username: string,
    private readonly password: string,
  ) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** scheme://host:port of this server, as an agent config pins it (server.httpUrl) */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Serves `file` at /artifacts/<name>; returns its URL. */
  serve(name: string, file: string, mode: ServeMode = { kind: 'normal' }): string {
    this.files.set(`/artifacts/${name}`, { file, mode });
    return `${this.origin}/artifacts/${name}`;
  }

  requestsFor(name: string): number {
    return this.requests.filter((r) => r.path === `/artifacts/${name}`).length;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const expected = `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`;
    const authorized = req.headers.authorization === expected;
    this.requests.push({ path, range: req.headers.range, authorized });
    if (!authorized) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="cowroot"' }).end();
      return;
    }
    const served = this.files.get(path);
    if (!served) {
      res.writeHead(404).end();
      return;
    }
    const size = (await stat(served.file)).size;
    const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = match ? Number(match[1]) : 0;
    if (start >= size && size > 0) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      return;
    }
    res.writeHead(match ? 206 : 200, {
      'Content-Length': size - start,
      'Accept-Ranges': 'bytes',
      ...(match ? { 'Content-Range': `bytes ${start}-${size - 1}/${size}` } : {}),
    });
    const mode = served.mode;
    const stream = createReadStream(served.file, { start, highWaterMark: 64 * 1024 });
    if (mode.kind === 'normal' || (mode.kind === 'drop' && mode.times <= 0)) {
      stream.pipe(res);
      return;
    }
    if (mode.kind === 'drop' || mode.kind === 'vanish') {
      let sent = 0;
      if (mode.kind === 'drop') mode.times -= 1;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const take = chunk.subarray(0, Math.max(0, mode.afterBytes - sent));
        if (take.length) res.write(take);
        sent += take.length;
        if (sent >= mode.afterBytes) break;
      }
      stream.destroy();
      setTimeout(() => {
        req.socket.destroy();
        if (mode.kind === 'vanish') void this.close();
      }, 50);
      return;
    }
    // throttle
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (let offset = 0; offset < chunk.length; offset += mode.bytesPerTick) {
        if (req.socket.destroyed) {
          stream.destroy();
          return;
        }
        res.write(chunk.subarray(offset, offset + mode.bytesPerTick));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    res.end();
  }
}
