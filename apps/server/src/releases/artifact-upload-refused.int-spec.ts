import { signManifest } from '@cowroot/protocol';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  call,
  counterValue,
  filesUnder,
  GeneratedStream,
  ManifestInput,
  manifestBytes,
  MiB,
} from '../../test/artifact-http';
import { eventually } from '../../test/eventually';
import { useReleaseRig } from '../../test/release-rig';

// Integration: the real server (PostgreSQL when TEST_DATABASE_URL is set, else PGlite) over real HTTP on
// loopback (test/artifact-http.ts: streams generated and responses hashed on the fly).

describe('refused artifact uploads leave nothing behind (integration)', () => {
  const rig = useReleaseRig();

  const size = 4 * MiB;
  const content = new GeneratedStream(size);
  const storedFiles = () => filesUnder(join(rig.server.config.storageDir, 'releases'));
  let before: string[];

  beforeAll(async () => {
    await rig.createRelease('refused', '1.0');
  });
  beforeEach(() => {
    before = storedFiles();
  });
  afterEach(async () => {
    await eventually(() => expect(filesUnder(join(rig.server.config.storageDir, 'incoming'))).toEqual([]), 15_000);
    expect(storedFiles()).toEqual(before);
    const rows = (await rig.server.dataSource.query(
      `SELECT a.file FROM release_artifacts a JOIN releases r ON r.id = a.release_id WHERE r.name = 'refused'`,
    )) as unknown[];
    expect(rows).toEqual([]);
  });

  /** A manifest of the `refused` release's full stream of `content`, but for `changes`. */
  const manifestFor = (changes: Partial<ManifestInput> = {}) =>
    manifestBytes({
      name: 'refused',
      version: '1.0',
      file: 'full.btrfs.zst',
      size,
      sha256: content.sha256(),
      snapshotUuid: randomUUID(),
      ...changes,
    });

  const put = (manifest: Buffer, headers: Record<string, string>, body: Readable | Buffer) =>
    call(rig.server, '/api/v1/releases/refused/1.0/artifacts/full.btrfs.zst', {
      method: 'PUT',
      headers: { ...rig.uploadHeaders(manifest), ...headers },
      body,
    });

  it('rejects a stream whose sha256 differs from the manifest (422)', async () => {
    const manifest = manifestFor({ sha256: 'ab'.repeat(32) });
    const reply = await put(manifest, { 'Content-Length': String(size) }, content.readable());
    expect(reply.status).toBe(422);
    expect(reply.body.toString()).toContain('sha256');
  });

  it('rejects a signature by an unregistered key before reading the body (422)', async () => {
    const manifest = manifestFor();
    const stranger = generateKeyPairSync('ed25519').privateKey;
    const receivedBefore = await counterValue(rig.server, 'cowroot_artifact_upload_bytes_total');
    const reply = await put(
      manifest,
      { 'Content-Length': String(size), 'X-Cowroot-Signature': signManifest(manifest, stranger) },
      content.readable(),
    );
    expect(reply.status).toBe(422);
    expect(reply.body.toString()).toContain('signature');
    expect(reply.headers.connection).toBe('close');
    // not one body byte went through the upload writer
    expect(await counterValue(rig.server, 'cowroot_artifact_upload_bytes_total')).toBe(receivedBefore);
  });

  it('rejects a signature by a revoked key (422)', async () => {
    const pair = generateKeyPairSync('ed25519');
    const json = { ...rig.admin, 'Content-Type': 'application/json' };
    const added = await call(rig.server, '/api/v1/signing-keys', {
      method: 'POST',
      headers: json,
      body: Buffer.from(
        JSON.stringify({ name: 'short-lived', publicKeyPem: pair.publicKey.export({ format: 'pem', type: 'spki' }) }),
      ),
    });
    const { id } = JSON.parse(added.body.toString()) as { id: string };
    expect(
      (await call(rig.server, `/api/v1/signing-keys/${id}`, { method: 'DELETE', headers: rig.admin })).status,
    ).toBe(200);
    const manifest = manifestFor();
    const reply = await put(
      manifest,
      { 'Content-Length': String(size), 'X-Cowroot-Signature': signManifest(manifest, pair.privateKey) },
      content.readable(),
    );
    expect(reply.status).toBe(422);
  });

  it('rejects a signature over other bytes and a garbage signature (422)', async () => {
    const manifest = manifestFor();
    const tampered = Buffer.from(manifest.toString().replace('"zstd"', '"none"'));
    const signedOther = await put(
      tampered,
      { 'Content-Length': String(size), 'X-Cowroot-Signature': signManifest(manifest, rig.signingKey) },
      content.readable(),
    );
    expect(signedOther.status).toBe(422);
    const garbage = await put(
      manifest,
      { 'Content-Length': String(size), 'X-Cowroot-Signature': 'bm9wZQ==' },
      content.readable(),
    );
    expect(garbage.status).toBe(422);
  });

  it('rejects a manifest for another release or file, and a missing manifest (400)', async () => {
    const other = manifestFor({ name: 'big' });
    expect((await put(other, { 'Content-Length': String(size) }, content.readable())).status).toBe(400);
    const otherFile = manifestFor({ file: 'x.zst' });
    expect((await put(otherFile, { 'Content-Length': String(size) }, content.readable())).status).toBe(400);
    const missing = await call(rig.server, '/api/v1/releases/refused/1.0/artifacts/full.btrfs.zst', {
      method: 'PUT',
      headers: { ...rig.admin, 'Content-Type': 'application/octet-stream' },
      body: Buffer.alloc(10),
    });
    expect(missing.status).toBe(400);
  });

  it('rejects a body longer than the manifest says (422) while it is still arriving', async () => {
    const short = 1 * MiB;
    const manifest = manifestFor({ size: short, sha256: content.sha256(0, short) });
    const reply = await put(manifest, { 'Transfer-Encoding': 'chunked' }, content.readable());
    expect(reply.status).toBe(422);
    expect(reply.body.toString()).toContain('longer');
  });

  it('removes the partial file when the client aborts mid-body, and refuses a body cut short (422)', async () => {
    const manifest = manifestFor();
    await new Promise<void>((resolve) => {
      const req = httpRequest(new URL('/api/v1/releases/refused/1.0/artifacts/full.btrfs.zst', rig.server.httpUrl), {
        method: 'PUT',
        headers: rig.uploadHeaders(manifest, { 'Content-Length': String(size) }),
        agent: false,
      });
      req.on('error', () => resolve());
      req.write(content.chunk(0));
      req.write(content.chunk(1), () => {
        // the first 2 MiB of 4 reached the server: wait until they are on disk, then pull the plug
        eventually(() => expect(filesUnder(join(rig.server.config.storageDir, 'incoming'))).toHaveLength(1), 15_000)
          .then(() => req.destroy())
          .catch(() => req.destroy());
      });
    });

    // a chunked body that simply ends early: the request completes, the size check refuses it
    const cut = await put(manifest, { 'Transfer-Encoding': 'chunked' }, content.readable(0, size - 1));
    expect(cut.status).toBe(422);
    expect(cut.body.toString()).toContain('truncated');
  });
});
