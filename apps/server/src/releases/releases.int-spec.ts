import {
  CommandType,
  DeviceChannel,
  deviceTopic,
  PROTOCOL_VERSION,
  RebootMode,
  signManifest,
  SnapshotOrigin,
} from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireRoot } from '@cowroot/testing';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, KeyObject, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest, IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connectAsync, MqttClient } from 'mqtt';
import { buildManifestBytes } from '../../../../deploy/release/src/artifact-manifest.builder';
import { ReleaseRefArg } from '../../../../deploy/release/src/release-ref';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { Actor } from '../auth/actor';
import { CommandDispatcher } from '../devices/command-dispatcher.service';
import { ArtifactUrlService } from './artifact-url.service';
import { ReleasesService } from './releases.service';

// Integration: the real server (PostgreSQL when TEST_DATABASE_URL is set, else PGlite) over real HTTP on
// loopback. Streams are generated on the fly and responses hashed on the fly: nothing large is buffered.

const MiB = 1024 * 1024;
const BIG_SIZE = 200 * MiB;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** sha256 of the body when `hashBody` was asked for (the body is then not kept) */
  sha256?: string;
  bodyBytes: number;
}

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  /** hash the response instead of keeping it */
  hashBody?: boolean;
}

/** Plain node:http so request bodies can be real streams and responses are never buffered when large. */
function call(server: TestServer, path: string, options: RequestOptions = {}): Promise<Reply> {
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
class GeneratedStream {
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

function streamOf(content: GeneratedStream, start?: number, end?: number): Readable {
  return content.readable(start, end);
}

function uuid(): string {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

interface ManifestInput {
  name: string;
  version: string;
  file: string;
  size: number;
  sha256: string;
  snapshotUuid: string;
  parent?: { name: string; version: string; snapshotUuid: string };
}

/** The release tool's own builder: the server is held against the bytes a build host really signs. */
function manifestBytes(input: ManifestInput): Buffer {
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

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** Current value of an unlabelled counter from /metrics. */
async function counterValue(server: TestServer, name: string): Promise<number> {
  const text = (await call(server, '/metrics')).body.toString();
  const match = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('releases and artifacts (integration)', () => {
  let server: TestServer;
  let signingKey: KeyObject;
  let admin: Record<string, string>;

  const uploadHeaders = (manifest: Buffer, extra: Record<string, string> = {}, key: KeyObject = signingKey) => ({
    ...admin,
    'Content-Type': 'application/octet-stream',
    'X-Cowroot-Manifest': manifest.toString('base64'),
    'X-Cowroot-Signature': signManifest(manifest, key),
    ...extra,
  });

  async function createRelease(name: string, version: string): Promise<void> {
    const reply = await call(server, '/api/v1/releases', {
      method: 'POST',
      headers: { ...admin, 'Content-Type': 'application/json' },
      body: Buffer.from(JSON.stringify({ name, version, description: `${name} ${version}` })),
    });
    expect(reply.status).toBe(201);
  }

  /** Creates a release and uploads a small full stream to it; returns its content and snapshot uuid. */
  async function publishSmall(
    name: string,
    version: string,
    size = 3 * MiB + 123,
  ): Promise<{ content: GeneratedStream; snapshotUuid: string }> {
    await createRelease(name, version);
    const content = new GeneratedStream(size);
    const snapshotUuid = uuid();
    const manifest = manifestBytes({
      name,
      version,
      file: 'full.btrfs.zst',
      size,
      sha256: content.sha256(),
      snapshotUuid,
    });
    const reply = await call(server, `/api/v1/releases/${name}/${version}/artifacts/full.btrfs.zst`, {
      method: 'PUT',
      headers: uploadHeaders(manifest, { 'Content-Length': String(size) }),
      body: streamOf(content),
    });
    expect(reply.status).toBe(201);
    return { content, snapshotUuid };
  }

  beforeAll(async () => {
    server = await startTestServer();
    admin = { Authorization: `Bearer ${server.adminToken}` };
    const pair = generateKeyPairSync('ed25519');
    signingKey = pair.privateKey;
    const reply = await call(server, '/api/v1/signing-keys', {
      method: 'POST',
      headers: { ...admin, 'Content-Type': 'application/json' },
      body: Buffer.from(
        JSON.stringify({ name: 'release-key', publicKeyPem: pair.publicKey.export({ format: 'pem', type: 'spki' }) }),
      ),
    });
    expect(reply.status).toBe(201);
  });

  afterAll(async () => {
    await server?.close();
  });

  describe('signing keys', () => {
    it('refuses a non-ed25519 key and a key registered twice, lists and revokes', async () => {
      const json = { ...admin, 'Content-Type': 'application/json' };
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' });
      const refused = await call(server, '/api/v1/signing-keys', {
        method: 'POST',
        headers: json,
        body: Buffer.from(JSON.stringify({ name: 'rsa', publicKeyPem: rsa })),
      });
      expect(refused.status).toBe(400);
      expect(refused.body.toString()).toContain('ed25519');

      const pem = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' });
      const added = await call(server, '/api/v1/signing-keys', {
        method: 'POST',
        headers: json,
        body: Buffer.from(JSON.stringify({ name: 'spare', publicKeyPem: pem })),
      });
      expect(added.status).toBe(201);
      const again = await call(server, '/api/v1/signing-keys', {
        method: 'POST',
        headers: json,
        body: Buffer.from(JSON.stringify({ name: 'spare-2', publicKeyPem: pem })),
      });
      expect(again.status).toBe(409);

      const id = (JSON.parse(added.body.toString()) as { id: string }).id;
      const revoked = await call(server, `/api/v1/signing-keys/${id}`, { method: 'DELETE', headers: admin });
      expect(revoked.status).toBe(200);
      expect((JSON.parse(revoked.body.toString()) as { revokedAt: string | null }).revokedAt).not.toBeNull();

      const list = JSON.parse((await call(server, '/api/v1/signing-keys', { headers: admin })).body.toString()) as {
        name: string;
      }[];
      expect(list.map((key) => key.name)).toEqual(expect.arrayContaining(['release-key', 'spare']));
      const audit = (await server.dataSource.query(
        `SELECT action FROM audit_log WHERE subject_type = 'signing-key' AND subject_id = $1 ORDER BY id`,
        [id],
      )) as { action: string }[];
      expect(audit.map((row) => row.action)).toEqual(['signing-key.added', 'signing-key.revoked']);
    });
  });

  describe('releases', () => {
    it('creates, refuses a duplicate with 409, lists with a name filter and cursor pagination', async () => {
      for (const version of ['1.0', '1.1', '1.2']) await createRelease('paging', version);
      const duplicate = await call(server, '/api/v1/releases', {
        method: 'POST',
        headers: { ...admin, 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ name: 'paging', version: '1.1' })),
      });
      expect(duplicate.status).toBe(409);

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = `/api/v1/releases?name=paging&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const page = JSON.parse((await call(server, query, { headers: admin })).body.toString()) as {
          items: { version: string; createdBy: string }[];
          nextCursor: string | null;
        };
        seen.push(...page.items.map((item) => item.version));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toEqual(['1.2', '1.1', '1.0']);

      const bad = await call(server, '/api/v1/releases?cursor=nonsense', { headers: admin });
      expect(bad.status).toBe(400);
    });
  });

  describe('upload of a 200 MB stream', () => {
    const content = new GeneratedStream(BIG_SIZE);
    const snapshotUuid = uuid();
    let sha256: string;

    beforeAll(async () => {
      sha256 = content.sha256();
      await createRelease('big', '1.0');
    });

    it('streams to storage without buffering (RSS growth far below the stream size) and commits the artifact', async () => {
      const manifest = manifestBytes({
        name: 'big',
        version: '1.0',
        file: 'full.btrfs.zst',
        size: BIG_SIZE,
        sha256,
        snapshotUuid,
      });
      const rssBefore = process.memoryUsage().rss;
      const buffersBefore = process.memoryUsage().arrayBuffers;
      let rssPeak = rssBefore;
      let buffersPeak = buffersBefore;
      const sampler = setInterval(() => {
        const usage = process.memoryUsage();
        rssPeak = Math.max(rssPeak, usage.rss);
        buffersPeak = Math.max(buffersPeak, usage.arrayBuffers);
      }, 10);
      const started = Date.now();
      let reply: Reply;
      try {
        reply = await call(server, '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst', {
          method: 'PUT',
          headers: uploadHeaders(manifest, { 'Content-Length': String(BIG_SIZE) }),
          body: streamOf(content),
        });
      } finally {
        clearInterval(sampler);
      }
      const seconds = (Date.now() - started) / 1000;
      const growthMiB = (rssPeak - rssBefore) / MiB;
      console.log(
        `200 MiB upload: ${seconds.toFixed(2)} s (${(BIG_SIZE / MiB / seconds).toFixed(0)} MiB/s), RSS before ${(rssBefore / MiB).toFixed(0)} MiB, ` +
          `peak ${(rssPeak / MiB).toFixed(0)} MiB, growth ${growthMiB.toFixed(1)} MiB; Buffer memory peak growth ` +
          `${((buffersPeak - buffersBefore) / MiB).toFixed(1)} MiB (client and server in one process)`,
      );
      expect(reply.status).toBe(201);
      expect(growthMiB).toBeLessThan(64);

      const artifact = JSON.parse(reply.body.toString()) as {
        size: number;
        sha256: string;
        kind: string;
        url: string;
        snapshotUuid: string;
      };
      expect(artifact).toMatchObject({ size: BIG_SIZE, sha256, kind: 'full', snapshotUuid });
      expect(artifact.url).toBe(`${server.config.publicUrl}/api/v1/releases/big/1.0/artifacts/full.btrfs.zst`);

      const release = JSON.parse(
        (await call(server, '/api/v1/releases/big/1.0', { headers: admin })).body.toString(),
      ) as {
        snapshotUuid: string;
        artifacts: { file: string }[];
      };
      expect(release.snapshotUuid).toBe(snapshotUuid);
      expect(release.artifacts.map((a) => a.file)).toEqual(['full.btrfs.zst']);
      expect(filesUnder(join(server.config.storageDir, 'incoming'))).toEqual([]);

      const [audit] = (await server.dataSource.query(
        `SELECT after FROM audit_log WHERE action = 'release.artifact.uploaded' AND subject_id = 'big/1.0'`,
      )) as { after: { size: number; sha256: string } }[];
      expect(audit.after).toMatchObject({ size: BIG_SIZE, sha256 });

      const metrics = (await call(server, '/metrics')).body.toString();
      expect(metrics).toMatch(/cowroot_artifact_upload_bytes_total \d+/);
    });

    it('serves resumed downloads: ranges stitched together hash to the whole, If-Range, suffix, 416', async () => {
      const path = '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst';
      const whole = await call(server, path, { headers: admin, hashBody: true });
      expect(whole.status).toBe(200);
      expect(whole.headers['accept-ranges']).toBe('bytes');
      expect(whole.headers.etag).toBe(`"${sha256}"`);
      expect(whole.headers['content-length']).toBe(String(BIG_SIZE));
      expect(whole.sha256).toBe(sha256);

      // a device that lost its connection at odd offsets and resumed twice
      const cuts = [0, 7 * MiB + 4093, 150 * MiB + 1];
      const stitched = createHash('sha256');
      for (let i = 0; i < cuts.length; i++) {
        const range = i + 1 < cuts.length ? `bytes=${cuts[i]}-${cuts[i + 1] - 1}` : `bytes=${cuts[i]}-`;
        const part = await call(server, path, { headers: { ...admin, Range: range, 'If-Range': `"${sha256}"` } });
        expect(part.status).toBe(206);
        const end = i + 1 < cuts.length ? cuts[i + 1] - 1 : BIG_SIZE - 1;
        expect(part.headers['content-range']).toBe(`bytes ${cuts[i]}-${end}/${BIG_SIZE}`);
        expect(part.headers['content-length']).toBe(String(end - cuts[i] + 1));
        expect(createHash('sha256').update(part.body).digest('hex')).toBe(content.sha256(cuts[i], end + 1));
        stitched.update(part.body);
      }
      expect(stitched.digest('hex')).toBe(sha256);

      const suffix = await call(server, path, { headers: { ...admin, Range: 'bytes=-1000' } });
      expect(suffix.status).toBe(206);
      expect(createHash('sha256').update(suffix.body).digest('hex')).toBe(content.sha256(BIG_SIZE - 1000));

      const stale = await call(server, path, {
        headers: { ...admin, Range: 'bytes=0-9', 'If-Range': '"an-older-build"' },
        hashBody: true,
      });
      expect(stale.status).toBe(200);
      expect(stale.bodyBytes).toBe(BIG_SIZE);

      const unsatisfiable = await call(server, path, { headers: { ...admin, Range: `bytes=${BIG_SIZE}-` } });
      expect(unsatisfiable.status).toBe(416);
      expect(unsatisfiable.headers['content-range']).toBe(`bytes */${BIG_SIZE}`);

      const head = await call(server, path, { method: 'HEAD', headers: { ...admin, Range: 'bytes=10-19' } });
      expect(head.status).toBe(206);
      expect(head.headers['content-length']).toBe('10');
      expect(head.bodyBytes).toBe(0);

      const metrics = (await call(server, '/metrics')).body.toString();
      const downloaded = /cowroot_artifact_download_bytes_total\{actor_type="operator"\} (\d+)/.exec(metrics);
      expect(Number(downloaded?.[1])).toBeGreaterThanOrEqual(2 * BIG_SIZE);
    });

    it('answers the signed manifest verbatim', async () => {
      const reply = await call(server, '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst/manifest', {
        headers: admin,
      });
      expect(reply.status).toBe(200);
      const body = JSON.parse(reply.body.toString()) as {
        manifest: string;
        signature: string;
        parsed: { sha256: string };
      };
      expect(body.parsed.sha256).toBe(sha256);
      expect(body.signature).toBe(signManifest(Buffer.from(body.manifest, 'base64'), signingKey));
    });

    it('answers 200 without reading the body when the same manifest is uploaded again', async () => {
      const reply = await call(server, '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst/manifest', {
        headers: admin,
      });
      const manifest = Buffer.from((JSON.parse(reply.body.toString()) as { manifest: string }).manifest, 'base64');
      const retry = await call(server, '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst', {
        method: 'PUT',
        headers: uploadHeaders(manifest, { 'Content-Length': String(BIG_SIZE) }),
        body: streamOf(content),
      });
      expect(retry.status).toBe(200);
    });
  });

  describe('roles and API description', () => {
    it('lets a viewer list and download but not create, upload or delete', async () => {
      const created = await call(server, '/api/v1/tokens', {
        method: 'POST',
        headers: { ...admin, 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ name: 'dashboard', role: 'viewer' })),
      });
      const viewer = { Authorization: `Bearer ${(JSON.parse(created.body.toString()) as { token: string }).token}` };
      expect((await call(server, '/api/v1/releases', { headers: viewer })).status).toBe(200);
      const ranged = await call(server, '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst', {
        headers: { ...viewer, Range: 'bytes=0-99' },
      });
      expect(ranged.status).toBe(206);
      const create = await call(server, '/api/v1/releases', {
        method: 'POST',
        headers: { ...viewer, 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ name: 'nope', version: '1' })),
      });
      expect(create.status).toBe(403);
      const upload = await call(server, '/api/v1/releases/big/1.0/artifacts/other.zst', {
        method: 'PUT',
        headers: viewer,
        body: Buffer.alloc(10),
      });
      expect(upload.status).toBe(403);
      expect((await call(server, '/api/v1/releases/big/1.0', { method: 'DELETE', headers: viewer })).status).toBe(403);
      expect((await call(server, '/api/v1/releases')).status).toBe(401);
    });

    it('describes the upload and download routes in the OpenAPI document', async () => {
      const document = JSON.parse((await call(server, '/docs-json')).body.toString()) as {
        paths: Record<string, Record<string, { description?: string }>>;
      };
      const artifactPath = document.paths['/api/v1/releases/{name}/{version}/artifacts/{file}'];
      expect(Object.keys(artifactPath)).toEqual(expect.arrayContaining(['put', 'get']));
      expect(artifactPath.put.description).toContain('Content-Range');
      expect(document.paths['/api/v1/releases/{name}/{version}/artifacts/{file}/upload']).toBeDefined();
      expect(document.paths['/api/v1/signing-keys']).toBeDefined();
    });
  });

  describe('refused uploads leave nothing behind', () => {
    const size = 4 * MiB;
    const content = new GeneratedStream(size);
    const storedFiles = () => filesUnder(join(server.config.storageDir, 'releases'));
    let before: string[];

    beforeAll(async () => {
      await createRelease('refused', '1.0');
    });
    beforeEach(() => {
      before = storedFiles();
    });
    afterEach(async () => {
      await waitFor(() => filesUnder(join(server.config.storageDir, 'incoming')).length === 0, 'incoming/ to be empty');
      expect(storedFiles()).toEqual(before);
      const rows = (await server.dataSource.query(
        `SELECT a.file FROM release_artifacts a JOIN releases r ON r.id = a.release_id WHERE r.name = 'refused'`,
      )) as unknown[];
      expect(rows).toEqual([]);
    });

    const put = (manifest: Buffer, headers: Record<string, string>, body: Readable | Buffer) =>
      call(server, '/api/v1/releases/refused/1.0/artifacts/full.btrfs.zst', {
        method: 'PUT',
        headers: { ...uploadHeaders(manifest), ...headers },
        body,
      });

    it('rejects a stream whose sha256 differs from the manifest (422)', async () => {
      const manifest = manifestBytes({
        name: 'refused',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: 'ab'.repeat(32),
        snapshotUuid: uuid(),
      });
      const reply = await put(manifest, { 'Content-Length': String(size) }, streamOf(content));
      expect(reply.status).toBe(422);
      expect(reply.body.toString()).toContain('sha256');
    });

    it('rejects a signature by an unregistered key before reading the body (422)', async () => {
      const manifest = manifestBytes({
        name: 'refused',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: uuid(),
      });
      const stranger = generateKeyPairSync('ed25519').privateKey;
      const receivedBefore = await counterValue(server, 'cowroot_artifact_upload_bytes_total');
      const reply = await put(
        manifest,
        { 'Content-Length': String(size), 'X-Cowroot-Signature': signManifest(manifest, stranger) },
        streamOf(content),
      );
      expect(reply.status).toBe(422);
      expect(reply.body.toString()).toContain('signature');
      expect(reply.headers.connection).toBe('close');
      // not one body byte went through the upload writer
      expect(await counterValue(server, 'cowroot_artifact_upload_bytes_total')).toBe(receivedBefore);
    });

    it('rejects a signature by a revoked key (422)', async () => {
      const pair = generateKeyPairSync('ed25519');
      const json = { ...admin, 'Content-Type': 'application/json' };
      const added = await call(server, '/api/v1/signing-keys', {
        method: 'POST',
        headers: json,
        body: Buffer.from(
          JSON.stringify({ name: 'short-lived', publicKeyPem: pair.publicKey.export({ format: 'pem', type: 'spki' }) }),
        ),
      });
      const { id } = JSON.parse(added.body.toString()) as { id: string };
      expect((await call(server, `/api/v1/signing-keys/${id}`, { method: 'DELETE', headers: admin })).status).toBe(200);
      const manifest = manifestBytes({
        name: 'refused',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: uuid(),
      });
      const reply = await put(
        manifest,
        { 'Content-Length': String(size), 'X-Cowroot-Signature': signManifest(manifest, pair.privateKey) },
        streamOf(content),
      );
      expect(reply.status).toBe(422);
    });

    it('rejects a signature over other bytes and a garbage signature (422)', async () => {
      const manifest = manifestBytes({
        name: 'refused',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: uuid(),
      });
      const tampered = Buffer.from(manifest.toString().replace('"zstd"', '"none"'));
      const signedOther = await put(
        tampered,
        { 'Content-Length': String(size), 'X-Cowroot-Signature': signManifest(manifest, signingKey) },
        streamOf(content),
      );
      expect(signedOther.status).toBe(422);
      const garbage = await put(
        manifest,
        { 'Content-Length': String(size), 'X-Cowroot-Signature': 'bm9wZQ==' },
        streamOf(content),
      );
      expect(garbage.status).toBe(422);
    });

    it('rejects a manifest for another release or file, and a missing manifest (400)', async () => {
      const other = manifestBytes({
        name: 'big',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: uuid(),
      });
      expect((await put(other, { 'Content-Length': String(size) }, streamOf(content))).status).toBe(400);
      const otherFile = manifestBytes({
        name: 'refused',
        version: '1.0',
        file: 'x.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: uuid(),
      });
      expect((await put(otherFile, { 'Content-Length': String(size) }, streamOf(content))).status).toBe(400);
      const missing = await call(server, '/api/v1/releases/refused/1.0/artifacts/full.btrfs.zst', {
        method: 'PUT',
        headers: { ...admin, 'Content-Type': 'application/octet-stream' },
        body: Buffer.alloc(10),
      });
      expect(missing.status).toBe(400);
    });

    it('rejects a body longer than the manifest says (422) while it is still arriving', async () => {
      const short = 1 * MiB;
      const manifest = manifestBytes({
        name: 'refused',
        version: '1.0',
        file: 'full.btrfs.zst',
        size: short,
        sha256: content.sha256(0, short),
        snapshotUuid: uuid(),
      });
      const reply = await put(manifest, { 'Transfer-Encoding': 'chunked' }, streamOf(content));
      expect(reply.status).toBe(422);
      expect(reply.body.toString()).toContain('longer');
    });

    it('removes the partial file when the client aborts mid-body, and refuses a body cut short (422)', async () => {
      const manifest = manifestBytes({
        name: 'refused',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: uuid(),
      });
      await new Promise<void>((resolve) => {
        const req = httpRequest(new URL('/api/v1/releases/refused/1.0/artifacts/full.btrfs.zst', server.httpUrl), {
          method: 'PUT',
          headers: uploadHeaders(manifest, { 'Content-Length': String(size) }),
          agent: false,
        });
        req.on('error', () => resolve());
        req.write(content.chunk(0));
        req.write(content.chunk(1), () => {
          // the first 2 MiB of 4 reached the server: wait until they are on disk, then pull the plug
          waitFor(() => filesUnder(join(server.config.storageDir, 'incoming')).length === 1, 'a temp file')
            .then(() => req.destroy())
            .catch(() => req.destroy());
        });
      });

      // a chunked body that simply ends early: the request completes, the size check refuses it
      const cut = await put(manifest, { 'Transfer-Encoding': 'chunked' }, streamOf(content, 0, size - 1));
      expect(cut.status).toBe(422);
      expect(cut.body.toString()).toContain('truncated');
    });
  });

  describe('resumable upload', () => {
    it('stores chunks, survives an aborted chunk, reports the offset and commits after the last byte', async () => {
      await createRelease('chunked', '1.0');
      const size = 6 * MiB + 77;
      const content = new GeneratedStream(size);
      const manifest = manifestBytes({
        name: 'chunked',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: uuid(),
      });
      const path = '/api/v1/releases/chunked/1.0/artifacts/full.btrfs.zst';
      const chunk = (start: number, end: number) =>
        call(server, path, {
          method: 'PUT',
          headers: uploadHeaders(manifest, {
            'Content-Range': `bytes ${start}-${end - 1}/${size}`,
            'Content-Length': String(end - start),
          }),
          body: streamOf(content, start, end),
        });

      const first = await chunk(0, 2 * MiB);
      expect(first.status).toBe(202);
      expect(JSON.parse(first.body.toString())).toEqual({ offset: 2 * MiB, size });

      // second chunk dies after 1 MiB reached the server
      await new Promise<void>((resolve) => {
        const req = httpRequest(new URL(path, server.httpUrl), {
          method: 'PUT',
          headers: uploadHeaders(manifest, {
            'Content-Range': `bytes ${2 * MiB}-${4 * MiB - 1}/${size}`,
            'Content-Length': String(2 * MiB),
          }),
          agent: false,
        });
        req.on('error', () => resolve());
        req.write(content.chunk(2), () => {
          // wait until part of this chunk is on the server's disk, then pull the plug
          const partial = () =>
            filesUnder(join(server.config.storageDir, 'incoming', 'resumable')).find((file) => file.endsWith('.part'));
          waitFor(
            () => {
              const file = partial();
              return file !== undefined && statSync(file).size > 2 * MiB;
            },
            'part of the second chunk on disk',
            15000,
          )
            .then(() => req.destroy())
            .catch(() => req.destroy());
        });
      });
      let offset = 0;
      for (let attempt = 0; attempt < 300; attempt++) {
        const status = await call(server, `${path}/upload`, { headers: admin });
        expect(status.status).toBe(200);
        offset = (JSON.parse(status.body.toString()) as { offset: number }).offset;
        const retry = await chunk(offset, offset + 1); // probe: 409 while the dead chunk is still being wound up
        if (retry.status !== 409) {
          expect(retry.status).toBe(202);
          offset += 1;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(offset).toBeGreaterThan(2 * MiB);

      const wrongOffset = await chunk(offset + 10, offset + 20);
      expect(wrongOffset.status).toBe(409);
      expect(
        (JSON.parse(wrongOffset.body.toString()) as { error: { details: { offset: number } } }).error.details.offset,
      ).toBe(offset);

      const last = await chunk(offset, size);
      expect(last.status).toBe(201);
      const whole = await call(server, path, { headers: admin, hashBody: true });
      expect(whole.sha256).toBe(content.sha256());
      expect((await call(server, `${path}/upload`, { headers: admin })).status).toBe(404);
      // a file name is a path component only: encoded slashes never reach the filesystem
      expect(
        (await call(server, '/api/v1/releases/chunked/1.0/artifacts/..%2F..%2Fescape/upload', { headers: admin }))
          .status,
      ).toBe(404);
      expect(
        (
          await call(server, '/api/v1/releases/chunked/1.0/artifacts/..%2F..%2Fescape/upload', {
            method: 'DELETE',
            headers: admin,
          })
        ).status,
      ).toBe(404);
      expect(
        (await call(server, '/api/v1/releases/chunked/1.0/artifacts/..%2F..%2Fescape', { headers: admin })).status,
      ).toBe(404);
      expect(filesUnder(join(server.config.storageDir, 'incoming'))).toEqual([]);
    });
  });

  describe('abandoned and superseded resumable uploads', () => {
    const start = async (name: string, size: number) => {
      await createRelease(name, '1.0');
      const content = new GeneratedStream(size);
      const manifest = manifestBytes({
        name,
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: uuid(),
      });
      const path = `/api/v1/releases/${name}/1.0/artifacts/full.btrfs.zst`;
      const first = await call(server, path, {
        method: 'PUT',
        headers: uploadHeaders(manifest, {
          'Content-Range': `bytes 0-${MiB - 1}/${size}`,
          'Content-Length': String(MiB),
        }),
        body: streamOf(content, 0, MiB),
      });
      expect(first.status).toBe(202);
      return { content, manifest, path };
    };

    it('audits abandoning a resumable upload, and answers 404 when there is nothing to abandon', async () => {
      const { path } = await start('abandoned', 3 * MiB);
      expect((await call(server, `${path}/upload`, { method: 'DELETE', headers: admin })).status).toBe(204);
      expect((await call(server, `${path}/upload`, { headers: admin })).status).toBe(404);
      expect((await call(server, `${path}/upload`, { method: 'DELETE', headers: admin })).status).toBe(404);
      const audit = await call(server, '/api/v1/audit?action=release.artifact.upload_abandoned', { headers: admin });
      const items = (JSON.parse(audit.body.toString()) as { items: Array<Record<string, unknown>> }).items;
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({
        actorType: 'operator',
        subjectId: 'abandoned/1.0',
        before: { file: 'full.btrfs.zst', receivedBytes: MiB, size: 3 * MiB },
      });
    });

    it('removes the partial file of an interrupted resumable upload once the whole file is stored', async () => {
      const size = 3 * MiB;
      const { content, manifest, path } = await start('superseded', size);
      const whole = await call(server, path, {
        method: 'PUT',
        headers: uploadHeaders(manifest, { 'Content-Length': String(size) }),
        body: streamOf(content),
      });
      expect(whole.status).toBe(201);
      expect((await call(server, `${path}/upload`, { headers: admin })).status).toBe(404);
      expect(filesUnder(join(server.config.storageDir, 'incoming'))).toEqual([]);
    });
  });

  describe('concurrent uploads', () => {
    it('stores one of two simultaneous uploads of the same file and refuses the other without leftovers', async () => {
      await createRelease('race', '1.0');
      const size = 8 * MiB;
      const content = new GeneratedStream(size);
      const manifest = manifestBytes({
        name: 'race',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: uuid(),
      });
      const upload = () =>
        call(server, '/api/v1/releases/race/1.0/artifacts/full.btrfs.zst', {
          method: 'PUT',
          headers: uploadHeaders(manifest, { 'Content-Length': String(size) }),
          body: streamOf(content),
        });
      const statuses = (await Promise.all([upload(), upload()])).map((reply) => reply.status).sort();
      expect(statuses).toEqual([201, 409]);
      const [{ id }] = (await server.dataSource.query(`SELECT id FROM releases WHERE name = 'race'`)) as {
        id: string;
      }[];
      expect(filesUnder(join(server.config.storageDir, 'releases', id))).toHaveLength(1);
      expect(filesUnder(join(server.config.storageDir, 'incoming'))).toEqual([]);
      const whole = await call(server, '/api/v1/releases/race/1.0/artifacts/full.btrfs.zst', {
        headers: admin,
        hashBody: true,
      });
      expect(whole.sha256).toBe(content.sha256());
    });
  });

  describe('incremental artifacts', () => {
    it('requires the parent release with a known snapshot, then accepts the incremental', async () => {
      const parent = await publishSmall('delta', '1.0');
      await createRelease('delta', '2.0');
      const size = MiB + 5;
      const content = new GeneratedStream(size);
      const snapshotUuid = uuid();
      const upload = (parentRef: { name: string; version: string; snapshotUuid: string }, file: string) => {
        const manifest = manifestBytes({
          name: 'delta',
          version: '2.0',
          file,
          size,
          sha256: content.sha256(),
          snapshotUuid,
          parent: parentRef,
        });
        return call(server, `/api/v1/releases/delta/2.0/artifacts/${file}`, {
          method: 'PUT',
          headers: uploadHeaders(manifest, { 'Content-Length': String(size) }),
          body: streamOf(content),
        });
      };
      const noParent = await upload({ name: 'delta', version: '0.9', snapshotUuid: uuid() }, 'from-0.9.btrfs.zst');
      expect(noParent.status).toBe(422);
      const wrongSnapshot = await upload({ name: 'delta', version: '1.0', snapshotUuid: uuid() }, 'from-1.0.btrfs.zst');
      expect(wrongSnapshot.status).toBe(422);
      const ok = await upload(
        { name: 'delta', version: '1.0', snapshotUuid: parent.snapshotUuid },
        'from-1.0.btrfs.zst',
      );
      expect(ok.status).toBe(201);
      expect(JSON.parse(ok.body.toString())).toMatchObject({
        kind: 'incremental',
        snapshotUuid,
        parent: { name: 'delta', version: '1.0', snapshotUuid: parent.snapshotUuid },
      });
    });
  });

  describe('devices', () => {
    const deviceId = 'gw-releases-1';
    let credential: string;
    let fleet: { content: GeneratedStream; snapshotUuid: string };
    let mqttClient: MqttClient | undefined;
    let seq = 0;
    const basic = (id: string, secret: string) => ({
      Authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
    });

    /** The device reports its state over real MQTT; resolves once the server has stored it. */
    async function reportState(
      bootedSnapshot: string,
      snapshots: Array<{ id: string; receivedUuid: string | null }>,
    ): Promise<void> {
      const message = {
        v: PROTOCOL_VERSION,
        seq: ++seq,
        sentAt: new Date().toISOString(),
        agentVersion: 'test',
        bootedSnapshot,
        trialBoot: false,
        fallbackSnapshot: null,
        pendingTrial: null,
        lastTrialResult: null,
        snapshots: snapshots.map((snapshot) => ({
          id: snapshot.id,
          uuid: uuid(),
          receivedUuid: snapshot.receivedUuid,
          parentUuid: null,
          readOnly: true,
          origin: snapshot.receivedUuid ? SnapshotOrigin.Received : SnapshotOrigin.Committed,
          release: null,
          createdAt: new Date().toISOString(),
        })),
        health: null,
      };
      await mqttClient!.publishAsync(deviceTopic(deviceId, DeviceChannel.State), JSON.stringify(message), { qos: 1 });
      const deadline = Date.now() + 15000;
      for (;;) {
        const [row] = (await server.dataSource.query('SELECT booted_snapshot FROM devices WHERE id = $1', [
          deviceId,
        ])) as { booted_snapshot: string | null }[];
        if (row?.booted_snapshot === bootedSnapshot) return;
        if (Date.now() > deadline) throw new Error(`state with booted snapshot ${bootedSnapshot} was not stored`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }

    beforeAll(async () => {
      fleet = await publishSmall('fleet', '1.0');
      const provisioned = await call(server, '/api/v1/devices', {
        method: 'POST',
        headers: { ...admin, 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ id: deviceId })),
      });
      expect(provisioned.status).toBe(201);
      credential = (JSON.parse(provisioned.body.toString()) as { credential: string }).credential;
      mqttClient = await connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
        clientId: deviceId,
        username: deviceId,
        password: credential,
        reconnectPeriod: 0,
      });
    });

    afterAll(async () => {
      await mqttClient?.endAsync();
    });

    it('lets a device download with its credential (resuming with Range) and refuses a wrong one', async () => {
      const path = '/api/v1/releases/fleet/1.0/artifacts/full.btrfs.zst';
      const whole = await call(server, path, { headers: basic(deviceId, credential), hashBody: true });
      expect(whole.status).toBe(200);
      expect(whole.sha256).toBe(fleet.content.sha256());
      const resumed = await call(server, path, { headers: { ...basic(deviceId, credential), Range: `bytes=${MiB}-` } });
      expect(resumed.status).toBe(206);
      expect(createHash('sha256').update(resumed.body).digest('hex')).toBe(fleet.content.sha256(MiB));
      expect((await call(server, `${path}/manifest`, { headers: basic(deviceId, credential) })).status).toBe(200);

      expect((await call(server, path, { headers: basic(deviceId, 'not-the-credential') })).status).toBe(401);
      expect((await call(server, path, { headers: basic('gw-unknown', credential) })).status).toBe(401);
      // a device credential opens only the routes marked for devices
      expect((await call(server, '/api/v1/releases', { headers: basic(deviceId, credential) })).status).toBe(401);
    });

    it('refuses to delete a release a device runs, and allows it once the device moved on', async () => {
      await reportState('fleet-1.0', [{ id: 'fleet-1.0', receivedUuid: fleet.snapshotUuid }]);
      const refused = await call(server, '/api/v1/releases/fleet/1.0', { method: 'DELETE', headers: admin });
      expect(refused.status).toBe(409);
      const error = (
        JSON.parse(refused.body.toString()) as {
          error: { code: string; details: { usages: Array<{ kind: string; id: string }> } };
        }
      ).error;
      expect(error.code).toBe('RELEASE_IN_USE');
      expect(error.details.usages).toEqual([expect.objectContaining({ kind: 'device', id: deviceId })]);

      // the device now runs a snapshot committed locally and only keeps fleet-1.0 in its inventory
      await reportState('local-1', [
        { id: 'fleet-1.0', receivedUuid: fleet.snapshotUuid },
        { id: 'local-1', receivedUuid: null },
      ]);
      expect((await call(server, '/api/v1/releases/fleet/1.0', { method: 'DELETE', headers: admin })).status).toBe(204);
    });

    it('refuses to delete a release an unfinished install command still offers', async () => {
      await publishSmall('fleet', '2.0');
      const releases = server.app.get(ReleasesService);
      const { release, artifact } = await releases.getArtifact('fleet', '2.0', 'full.btrfs.zst');
      const operator: Actor = { type: 'operator', id: 'test', name: 'test' };
      const command = await server.app.get(CommandDispatcher).dispatch(
        deviceId,
        {
          type: CommandType.Install,
          artifact: server.app.get(ArtifactUrlService).offerFor(release, artifact),
          reboot: { mode: RebootMode.Never },
        },
        operator,
      );
      const refused = await call(server, '/api/v1/releases/fleet/2.0', { method: 'DELETE', headers: admin });
      expect(refused.status).toBe(409);
      expect(refused.body.toString()).toContain(command.id);

      await server.dataSource.query(`UPDATE device_commands SET status = 'canceled' WHERE id = $1`, [command.id]);
      expect((await call(server, '/api/v1/releases/fleet/2.0', { method: 'DELETE', headers: admin })).status).toBe(204);
    });
  });

  describe('delete', () => {
    it('deletes a release nobody uses: rows, files and an audit entry', async () => {
      await publishSmall('unused', '1.0');
      const [{ id }] = (await server.dataSource.query(`SELECT id FROM releases WHERE name = 'unused'`)) as {
        id: string;
      }[];
      expect(existsSync(join(server.config.storageDir, 'releases', id, 'full.btrfs.zst'))).toBe(true);
      const reply = await call(server, '/api/v1/releases/unused/1.0?reason=superseded', {
        method: 'DELETE',
        headers: admin,
      });
      expect(reply.status).toBe(204);
      expect(existsSync(join(server.config.storageDir, 'releases', id))).toBe(false);
      expect((await call(server, '/api/v1/releases/unused/1.0', { headers: admin })).status).toBe(404);
      const [audit] = (await server.dataSource.query(
        `SELECT reason, before FROM audit_log WHERE action = 'release.deleted' AND subject_id = 'unused/1.0'`,
      )) as {
        reason: string;
        before: { artifacts: unknown[] };
      }[];
      expect(audit.reason).toBe('superseded');
      expect(audit.before.artifacts).toHaveLength(1);
    });
  });
});

describePrivileged(
  'artifact storage full (tmpfs of 8 MiB as STORAGE_DIR)',
  [requireRoot, requireCommand('mount')],
  () => {
    let storageDir: string;
    let mounted = false;
    let server: TestServer | undefined;
    let signingKey: KeyObject;
    let admin: Record<string, string>;

    beforeAll(async () => {
      storageDir = mkdtempSync(join(tmpdir(), 'cowroot-full-storage-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', storageDir], { stdio: 'pipe' });
      mounted = true;
      server = await startTestServer({ env: { STORAGE_DIR: storageDir } });
      admin = { Authorization: `Bearer ${server.adminToken}` };
      const pair = generateKeyPairSync('ed25519');
      signingKey = pair.privateKey;
      const json = { ...admin, 'Content-Type': 'application/json' };
      await call(server, '/api/v1/signing-keys', {
        method: 'POST',
        headers: json,
        body: Buffer.from(
          JSON.stringify({ name: 'k', publicKeyPem: pair.publicKey.export({ format: 'pem', type: 'spki' }) }),
        ),
      });
      await call(server, '/api/v1/releases', {
        method: 'POST',
        headers: json,
        body: Buffer.from(JSON.stringify({ name: 'huge', version: '1' })),
      });
    });

    afterAll(async () => {
      await server?.close();
      if (mounted) execFileSync('umount', [storageDir], { stdio: 'pipe' });
      rmSync(storageDir, { recursive: true, force: true });
    });

    it('answers 507 and removes the partial file, then accepts an upload that fits', async () => {
      const upload = (content: GeneratedStream) => {
        const manifest = manifestBytes({
          name: 'huge',
          version: '1',
          file: 'full.btrfs.zst',
          size: content.size,
          sha256: content.sha256(),
          snapshotUuid: uuid(),
        });
        return call(server!, '/api/v1/releases/huge/1/artifacts/full.btrfs.zst', {
          method: 'PUT',
          headers: {
            ...admin,
            'Content-Type': 'application/octet-stream',
            'Content-Length': String(content.size),
            'X-Cowroot-Manifest': manifest.toString('base64'),
            'X-Cowroot-Signature': signManifest(manifest, signingKey),
          },
          body: streamOf(content),
        });
      };
      const tooBig = await upload(new GeneratedStream(16 * MiB));
      expect(tooBig.status).toBe(507);
      expect(tooBig.body.toString()).toContain('storage is full');
      expect(filesUnder(storageDir)).toEqual([]);

      const fits = await upload(new GeneratedStream(2 * MiB));
      expect(fits.status).toBe(201);
    });
  },
);
