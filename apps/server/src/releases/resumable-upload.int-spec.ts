import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { call, filesUnder, GeneratedStream, manifestBytes, MiB } from '../../test/artifact-http';
import { eventually } from '../../test/eventually';
import { useReleaseRig } from '../../test/release-rig';

// Integration: the real server (PostgreSQL when TEST_DATABASE_URL is set, else PGlite) over real HTTP on
// loopback (test/artifact-http.ts: streams generated and responses hashed on the fly).

describe('resumable artifact uploads (integration)', () => {
  const rig = useReleaseRig();

  describe('resumable upload', () => {
    it('stores chunks, survives an aborted chunk, reports the offset and commits after the last byte', async () => {
      await rig.createRelease('chunked', '1.0');
      const size = 6 * MiB + 77;
      const content = new GeneratedStream(size);
      const manifest = manifestBytes({
        name: 'chunked',
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: randomUUID(),
      });
      const path = '/api/v1/releases/chunked/1.0/artifacts/full.btrfs.zst';
      const chunk = (start: number, end: number) =>
        call(rig.server, path, {
          method: 'PUT',
          headers: rig.uploadHeaders(manifest, {
            'Content-Range': `bytes ${start}-${end - 1}/${size}`,
            'Content-Length': String(end - start),
          }),
          body: content.readable(start, end),
        });

      const first = await chunk(0, 2 * MiB);
      expect(first.status).toBe(202);
      expect(JSON.parse(first.body.toString())).toEqual({ offset: 2 * MiB, size });

      // second chunk dies after 1 MiB reached the server
      await new Promise<void>((resolve) => {
        const req = httpRequest(new URL(path, rig.server.httpUrl), {
          method: 'PUT',
          headers: rig.uploadHeaders(manifest, {
            'Content-Range': `bytes ${2 * MiB}-${4 * MiB - 1}/${size}`,
            'Content-Length': String(2 * MiB),
          }),
          agent: false,
        });
        req.on('error', () => resolve());
        req.write(content.chunk(2), () => {
          // wait until part of this chunk is on the server's disk, then pull the plug
          const partial = () =>
            filesUnder(join(rig.server.config.storageDir, 'incoming', 'resumable')).find((file) =>
              file.endsWith('.part'),
            );
          eventually(() => {
            const file = partial();
            expect(file).toBeDefined();
            expect(statSync(file!).size).toBeGreaterThan(2 * MiB);
          }, 15_000)
            .then(() => req.destroy())
            .catch(() => req.destroy());
        });
      });
      let offset = 0;
      for (let attempt = 0; attempt < 300; attempt++) {
        const status = await call(rig.server, `${path}/upload`, { headers: rig.admin });
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
      const whole = await call(rig.server, path, { headers: rig.admin, hashBody: true });
      expect(whole.sha256).toBe(content.sha256());
      expect((await call(rig.server, `${path}/upload`, { headers: rig.admin })).status).toBe(404);
      // a file name is a path component only: encoded slashes never reach the filesystem
      expect(
        (
          await call(rig.server, '/api/v1/releases/chunked/1.0/artifacts/..%2F..%2Fescape/upload', {
            headers: rig.admin,
          })
        ).status,
      ).toBe(404);
      expect(
        (
          await call(rig.server, '/api/v1/releases/chunked/1.0/artifacts/..%2F..%2Fescape/upload', {
            method: 'DELETE',
            headers: rig.admin,
          })
        ).status,
      ).toBe(404);
      expect(
        (await call(rig.server, '/api/v1/releases/chunked/1.0/artifacts/..%2F..%2Fescape', { headers: rig.admin }))
          .status,
      ).toBe(404);
      expect(filesUnder(join(rig.server.config.storageDir, 'incoming'))).toEqual([]);
    });
  });

  describe('abandoned and superseded resumable uploads', () => {
    const start = async (name: string, size: number) => {
      await rig.createRelease(name, '1.0');
      const content = new GeneratedStream(size);
      const manifest = manifestBytes({
        name,
        version: '1.0',
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid: randomUUID(),
      });
      const path = `/api/v1/releases/${name}/1.0/artifacts/full.btrfs.zst`;
      const first = await call(rig.server, path, {
        method: 'PUT',
        headers: rig.uploadHeaders(manifest, {
          'Content-Range': `bytes 0-${MiB - 1}/${size}`,
          'Content-Length': String(MiB),
        }),
        body: content.readable(0, MiB),
      });
      expect(first.status).toBe(202);
      return { content, manifest, path };
    };

    it('audits abandoning a resumable upload, and answers 404 when there is nothing to abandon', async () => {
      const { path } = await start('abandoned', 3 * MiB);
      expect((await call(rig.server, `${path}/upload`, { method: 'DELETE', headers: rig.admin })).status).toBe(204);
      expect((await call(rig.server, `${path}/upload`, { headers: rig.admin })).status).toBe(404);
      expect((await call(rig.server, `${path}/upload`, { method: 'DELETE', headers: rig.admin })).status).toBe(404);
      const audit = await call(rig.server, '/api/v1/audit?action=release.artifact.upload_abandoned', {
        headers: rig.admin,
      });
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
      const whole = await call(rig.server, path, {
        method: 'PUT',
        headers: rig.uploadHeaders(manifest, { 'Content-Length': String(size) }),
        body: content.readable(),
      });
      expect(whole.status).toBe(201);
      expect((await call(rig.server, `${path}/upload`, { headers: rig.admin })).status).toBe(404);
      expect(filesUnder(join(rig.server.config.storageDir, 'incoming'))).toEqual([]);
    });
  });
});
