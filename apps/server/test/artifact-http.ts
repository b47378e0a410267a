import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { request as httpRequest, IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buildManifestBytes } from '../../../deploy/release/src/artifact-manifest.builder';
import { ReleaseRefArg } from '../../../deploy/release/src/release-ref';
import { TestServer } from './start-test-server';

// The artifact routes' integration tests talk plain node:http to the real server: request bodies are real
// streams, generated on the fly, and responses are hashed on the fly, so nothing large is buffered.

export const MiB = 1024 * 1024;

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** sha256 of the body when `hashBody` was asked for (the body is then not kept) */
  sha256?: string;
  bodyBytes: number;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  /** hash the response instead of keeping it */
  hashBody?: boolean;
}

/** Plain node:http so request bodies can be real streams and responses are never buffered when large. */
export function call(server: TestServer, path: string, options: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, server.httpUrl);
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const hash = createHash('sha256');
      let bodyBytes = 0;
      res.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.length;
        if (options.hashBody) hash.update(chunk);
        else chunks.push(chunk);
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          sha256: options.hashBody ? hash.digest('hex') : undefined,
          bodyBytes,
        }),
      );
      res.on('error', reject);
    });
    // A server that refuses early closes the connection while we may still be writing: the response
    // has usually been parsed by then; only fail when it has not.
    req.on('error', (error) => setTimeout(() => reject(error), 200));
    if (options.body instanceof Readable) options.body.pipe(req);
    else req.end(options.body);
  });
}

/** Deterministic pseudo-random content: chunk i is a 1 MiB block stamped with i, so no two chunks match. */
export class GeneratedStream {
  private static readonly block = randomBytes(MiB);

  constructor(readonly size: number) {}

  chunk(index: number): Buffer {
    const length = Math.min(MiB, this.size - index * MiB);
    const chunk = Buffer.from(GeneratedStream.block.subarray(0, length));
    chunk.writeUInt32BE(index, 0);
    return chunk;
  }

  /** bytes [start, end) as a Readable, made chunk by chunk as the consumer pulls */
  readable(start = 0, end = this.size): Readable {
    const chunkAt = (index: number) => this.chunk(index);
    let position = start;
    return new Readable({
      read() {
        if (position >= end) {
          this.push(null);
          return;
        }
        const index = Math.floor(position / MiB);
        const chunk = chunkAt(index);
        const from = position - index * MiB;
        const to = Math.min(chunk.length, end - index * MiB);
        position += to - from;
        this.push(chunk.subarray(from, to));
      },
    });
  }

  sha256(start = 0, end = this.size): string {
    const hash = createHash('sha256');
    for (let position = start; position < end;) {
      const index = Math.floor(position / MiB);
      const from = position - index * MiB;
      const to = Math.min(MiB, end - index * MiB);
      hash.update(this.chunk(index).subarray(from, to));
      position += to - from;
    }
    return hash.digest('hex');
  }
}

export interface ManifestInput {
  name: string;
  version: string;
  file: string;
  size: number;
  sha256: string;
  snapshotUuid: string;
  parent?: { name: string; version: string; snapshotUuid: string };
}

/** The release tool's own builder: the server is held against the bytes a build host really signs. */
export function manifestBytes(input: ManifestInput): Buffer {
  return buildManifestBytes({
    release: new ReleaseRefArg(input.name, input.version),
    file: input.file,
    size: input.size,
    sha256: input.sha256,
    snapshotUuid: input.snapshotUuid,
    parent: input.parent
      ? { release: new ReleaseRefArg(input.parent.name, input.parent.version), snapshotUuid: input.parent.snapshotUuid }
      : null,
    createdAt: new Date(),
  });
}

export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** Current value of an unlabelled counter from /metrics. */
export async function counterValue(server: TestServer, name: string): Promise<number> {
  const text = (await call(server, '/metrics')).body.toString();
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}
