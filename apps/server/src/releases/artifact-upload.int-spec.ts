import { signManifest } from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireRoot } from '@cowroot/testing';
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, filesUnder, GeneratedStream, manifestBytes, MiB, Reply } from '../../test/artifact-http';
import { ReleaseRig, startReleaseRig, useReleaseRig } from '../../test/release-rig';

// Integration: the real server (PostgreSQL when TEST_DATABASE_URL is set, else PGlite) over real HTTP on
// loopback (test/artifact-http.ts: streams generated and responses hashed on the fly).

const BIG_SIZE = 200 * MiB;

describe('artifact upload and download (integration)', () => {
  const rig = useReleaseRig();

  describe('upload of a 200 MB stream', () => {
    const content = new GeneratedStream(BIG_SIZE);
    const snapshotUuid = randomUUID();
    let sha256: string;

    beforeAll(async () => {
      sha256 = content.sha256();
      await rig.createRelease('big', '1.0');
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
        reply = await call(rig.server, '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst', {
          method: 'PUT',
          headers: rig.uploadHeaders(manifest, { 'Content-Length': String(BIG_SIZE) }),
          body: content.readable(),
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
      expect(artifact.url).toBe(`${rig.server.config.publicUrl}/api/v1/releases/big/1.0/artifacts/full.btrfs.zst`);

      const release = JSON.parse(
        (await call(rig.server, '/api/v1/releases/big/1.0', { headers: rig.admin })).body.toString(),
      ) as {
        snapshotUuid: string;
        artifacts: { file: string }[];
      };
      expect(release.snapshotUuid).toBe(snapshotUuid);
      expect(release.artifacts.map((a) => a.file)).toEqual(['full.btrfs.zst']);
      expect(filesUnder(join(rig.server.config.storageDir, 'incoming'))).toEqual([]);

      const [audit] = (await rig.server.dataSource.query(
        `SELECT after FROM audit_log WHERE action = 'release.artifact.uploaded' AND subject_id = 'big/1.0'`,
      )) as { after: { size: number; sha256: string } }[];
      expect(audit.after).toMatchObject({ size: BIG_SIZE, sha256 });

      const metrics = (await call(rig.server, '/metrics')).body.toString();
      expect(metrics).toMatch(/cowroot_artifact_upload_bytes_total \d+/);
    });

    it('serves resumed downloads: ranges stitched together hash to the whole, If-Range, suffix, 416', async () => {
      const path = '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst';
      const whole = await call(rig.server, path, { headers: rig.admin, hashBody: true });
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
        const part = await call(rig.server, path, {
          headers: { ...rig.admin, Range: range, 'If-Range': `"${sha256}"` },
        });
        expect(part.status).toBe(206);
        const end = i + 1 < cuts.length ? cuts[i + 1] - 1 : BIG_SIZE - 1;
        expect(part.headers['content-range']).toBe(`bytes ${cuts[i]}-${end}/${BIG_SIZE}`);
        expect(part.headers['content-length']).toBe(String(end - cuts[i] + 1));
        expect(createHash('sha256').update(part.body).digest('hex')).toBe(content.sha256(cuts[i], end + 1));
        stitched.update(part.body);
      }
      expect(stitched.digest('hex')).toBe(sha256);

      const suffix = await call(rig.server, path, { headers: { ...rig.admin, Range: 'bytes=-1000' } });
      expect(suffix.status).toBe(206);
      expect(createHash('sha256').update(suffix.body).digest('hex')).toBe(content.sha256(BIG_SIZE - 1000));

      const stale = await call(rig.server, path, {
        headers: { ...rig.admin, Range: 'bytes=0-9', 'If-Range': '"an-older-build"' },
        hashBody: true,
      });
      expect(stale.status).toBe(200);
      expect(stale.bodyBytes).toBe(BIG_SIZE);

      const unsatisfiable = await call(rig.server, path, { headers: { ...rig.admin, Range: `bytes=${BIG_SIZE}-` } });
      expect(unsatisfiable.status).toBe(416);
      expect(unsatisfiable.headers['content-range']).toBe(`bytes */${BIG_SIZE}`);

      const head = await call(rig.server, path, { method: 'HEAD', headers: { ...rig.admin, Range: 'bytes=10-19' } });
      expect(head.status).toBe(206);
      expect(head.headers['content-length']).toBe('10');
      expect(head.bodyBytes).toBe(0);

      const metrics = (await call(rig.server, '/metrics')).body.toString();
      const downloaded = /cowroot_artifact_download_bytes_total\{actor_type="operator"\} (\d+)/.exec(metrics);
      expect(Number(downloaded?.[1])).toBeGreaterThanOrEqual(2 * BIG_SIZE);
    });

    it('answers the signed manifest verbatim', async () => {
      const reply = await call(rig.server, '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst/manifest', {
        headers: rig.admin,
      });
      expect(reply.status).toBe(200);
      const body = JSON.parse(reply.body.toString()) as {
        manifest: string;
        signature: string;
        parsed: { sha256: string };
      };
      expect(body.parsed.sha256).toBe(sha256);
      expect(body.signature).toBe(signManifest(Buffer.from(body.manifest, 'base64'), rig.signingKey));
    });

    it('answers 200 without reading the body when the same manifest is uploaded again', async () => {
      const reply = await call(rig.server, '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst/manifest', {
        headers: rig.admin,
      });
      const manifest = Buffer.from((JSON.parse(reply.body.toString()) as { manifest: string }).manifest, 'base64');
      const retry = await call(rig.server, '/api/v1/releases/big/1.0/artifacts/full.btrfs.zst', {
        method: 'PUT',
        headers: rig.uploadHeaders(manifest, { 'Content-Length': String(BIG_SIZE) }),
        body: content.readable(),
      });
      expect(retry.status).toBe(200);
    });
  });

  describe('concurrent uploads', () => {
    it('stores one of two simultaneous uploads of the same file and refuses the other without leftovers', async () => {
      await rig.createRelease('race', '1.0');
      const size = 8 * MiB;
      const content = new GeneratedStream(size);
      const manifest = manifestBytes({
        name: 'race',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: randomUUID(),
      });
      const upload = () =>
        call(rig.server, '/api/v1/releases/race/1.0/artifacts/full.btrfs.zst', {
          method: 'PUT',
          headers: rig.uploadHeaders(manifest, { 'Content-Length': String(size) }),
          body: content.readable(),
        });
      const statuses = (await Promise.all([upload(), upload()])).map((reply) => reply.status).sort();
      expect(statuses).toEqual([201, 409]);
      const [{ id }] = (await rig.server.dataSource.query(`SELECT id FROM releases WHERE name = 'race'`)) as {
        id: string;
      }[];
      expect(filesUnder(join(rig.server.config.storageDir, 'releases', id))).toHaveLength(1);
      expect(filesUnder(join(rig.server.config.storageDir, 'incoming'))).toEqual([]);
      const whole = await call(rig.server, '/api/v1/releases/race/1.0/artifacts/full.btrfs.zst', {
        headers: rig.admin,
        hashBody: true,
      });
      expect(whole.sha256).toBe(content.sha256());
    });
  });

  describe('incremental artifacts', () => {
    it('requires the parent release with a known snapshot, then accepts the incremental', async () => {
      const parent = await rig.publishSmall('delta', '1.0');
      await rig.createRelease('delta', '2.0');
      const size = MiB + 5;
      const content = new GeneratedStream(size);
      const snapshotUuid = randomUUID();
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
        return call(rig.server, `/api/v1/releases/delta/2.0/artifacts/${file}`, {
          method: 'PUT',
          headers: rig.uploadHeaders(manifest, { 'Content-Length': String(size) }),
          body: content.readable(),
        });
      };
      const noParent = await upload(
        { name: 'delta', version: '0.9', snapshotUuid: randomUUID() },
        'from-0.9.btrfs.zst',
      );
      expect(noParent.status).toBe(422);
      const wrongSnapshot = await upload(
        { name: 'delta', version: '1.0', snapshotUuid: randomUUID() },
        'from-1.0.btrfs.zst',
      );
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
});

describePrivileged(
  'artifact storage full (tmpfs of 8 MiB as STORAGE_DIR)',
  [requireRoot, requireCommand('mount')],
  () => {
    let storageDir: string;
    let mounted = false;
    let rig: ReleaseRig | undefined;

    beforeAll(async () => {
      storageDir = mkdtempSync(join(tmpdir(), 'cowroot-full-storage-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', storageDir], { stdio: 'pipe' });
      mounted = true;
      rig = await startReleaseRig({ env: { STORAGE_DIR: storageDir } });
      await rig.createRelease('huge', '1');
    });

    afterAll(async () => {
      await rig?.close();
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
          snapshotUuid: randomUUID(),
        });
        return call(rig!.server, '/api/v1/releases/huge/1/artifacts/full.btrfs.zst', {
          method: 'PUT',
          headers: rig!.uploadHeaders(manifest, { 'Content-Length': String(content.size) }),
          body: content.readable(),
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
