import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { call } from '../../test/artifact-http';
import { useReleaseRig } from '../../test/release-rig';

// Integration: the real server (PostgreSQL when TEST_DATABASE_URL is set, else PGlite) over real HTTP on
// loopback (test/artifact-http.ts: streams generated and responses hashed on the fly).

describe('releases, signing keys and roles (integration)', () => {
  const rig = useReleaseRig();

  describe('signing keys', () => {
    it('refuses a non-ed25519 key and a key registered twice, lists and revokes', async () => {
      const json = { ...rig.admin, 'Content-Type': 'application/json' };
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' });
      const refused = await call(rig.server, '/api/v1/signing-keys', {
        method: 'POST',
        headers: json,
        body: Buffer.from(JSON.stringify({ name: 'rsa', publicKeyPem: rsa })),
      });
      expect(refused.status).toBe(400);
      expect(refused.body.toString()).toContain('ed25519');

      const pem = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' });
      const added = await call(rig.server, '/api/v1/signing-keys', {
        method: 'POST',
        headers: json,
        body: Buffer.from(JSON.stringify({ name: 'spare', publicKeyPem: pem })),
      });
      expect(added.status).toBe(201);
      const again = await call(rig.server, '/api/v1/signing-keys', {
        method: 'POST',
        headers: json,
        body: Buffer.from(JSON.stringify({ name: 'spare-2', publicKeyPem: pem })),
      });
      expect(again.status).toBe(409);

      const id = (JSON.parse(added.body.toString()) as { id: string }).id;
      const revoked = await call(rig.server, `/api/v1/signing-keys/${id}`, { method: 'DELETE', headers: rig.admin });
      expect(revoked.status).toBe(200);
      expect((JSON.parse(revoked.body.toString()) as { revokedAt: string | null }).revokedAt).not.toBeNull();

      const list = JSON.parse(
        (await call(rig.server, '/api/v1/signing-keys', { headers: rig.admin })).body.toString(),
      ) as {
        name: string;
      }[];
      expect(list.map((key) => key.name)).toEqual(expect.arrayContaining(['release-key', 'spare']));
      const audit = (await rig.server.dataSource.query(
        `SELECT action FROM audit_log WHERE subject_type = 'signing-key' AND subject_id = $1 ORDER BY id`,
        [id],
      )) as { action: string }[];
      expect(audit.map((row) => row.action)).toEqual(['signing-key.added', 'signing-key.revoked']);
    });
  });

  describe('releases', () => {
    it('creates, refuses a duplicate with 409, lists with a name filter and cursor pagination', async () => {
      for (const version of ['1.0', '1.1', '1.2']) await rig.createRelease('paging', version);
      const duplicate = await call(rig.server, '/api/v1/releases', {
        method: 'POST',
        headers: { ...rig.admin, 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ name: 'paging', version: '1.1' })),
      });
      expect(duplicate.status).toBe(409);

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = `/api/v1/releases?name=paging&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const page = JSON.parse((await call(rig.server, query, { headers: rig.admin })).body.toString()) as {
          items: { version: string; createdBy: string }[];
          nextCursor: string | null;
        };
        seen.push(...page.items.map((item) => item.version));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toEqual(['1.2', '1.1', '1.0']);

      const bad = await call(rig.server, '/api/v1/releases?cursor=nonsense', { headers: rig.admin });
      expect(bad.status).toBe(400);
    });
  });

  describe('roles and API description', () => {
    it('lets a viewer list and download but not create, upload or delete', async () => {
      await rig.publishSmall('viewed', '1.0');
      const created = await call(rig.server, '/api/v1/tokens', {
        method: 'POST',
        headers: { ...rig.admin, 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ name: 'dashboard', role: 'viewer' })),
      });
      const viewer = { Authorization: `Bearer ${(JSON.parse(created.body.toString()) as { token: string }).token}` };
      expect((await call(rig.server, '/api/v1/releases', { headers: viewer })).status).toBe(200);
      const ranged = await call(rig.server, '/api/v1/releases/viewed/1.0/artifacts/full.btrfs.zst', {
        headers: { ...viewer, Range: 'bytes=0-99' },
      });
      expect(ranged.status).toBe(206);
      const create = await call(rig.server, '/api/v1/releases', {
        method: 'POST',
        headers: { ...viewer, 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ name: 'nope', version: '1' })),
      });
      expect(create.status).toBe(403);
      const upload = await call(rig.server, '/api/v1/releases/viewed/1.0/artifacts/other.zst', {
        method: 'PUT',
        headers: viewer,
        body: Buffer.alloc(10),
      });
      expect(upload.status).toBe(403);
      expect(
        (await call(rig.server, '/api/v1/releases/viewed/1.0', { method: 'DELETE', headers: viewer })).status,
      ).toBe(403);
      expect((await call(rig.server, '/api/v1/releases')).status).toBe(401);
    });

    it('describes the upload and download routes in the OpenAPI document', async () => {
      const document = JSON.parse((await call(rig.server, '/docs-json')).body.toString()) as {
        paths: Record<string, Record<string, { description?: string }>>;
      };
      const artifactPath = document.paths['/api/v1/releases/{name}/{version}/artifacts/{file}'];
      expect(Object.keys(artifactPath)).toEqual(expect.arrayContaining(['put', 'get']));
      expect(artifactPath.put.description).toContain('Content-Range');
      expect(document.paths['/api/v1/releases/{name}/{version}/artifacts/{file}/upload']).toBeDefined();
      expect(document.paths['/api/v1/signing-keys']).toBeDefined();
    });
  });

  describe('delete', () => {
    it('deletes a release nobody uses: rows, files and an audit entry', async () => {
      await rig.publishSmall('unused', '1.0');
      const [{ id }] = (await rig.server.dataSource.query(`SELECT id FROM releases WHERE name = 'unused'`)) as {
        id: string;
      }[];
      expect(existsSync(join(rig.server.config.storageDir, 'releases', id, 'full.btrfs.zst'))).toBe(true);
      const reply = await call(rig.server, '/api/v1/releases/unused/1.0?reason=superseded', {
        method: 'DELETE',
        headers: rig.admin,
      });
      expect(reply.status).toBe(204);
      expect(existsSync(join(rig.server.config.storageDir, 'releases', id))).toBe(false);
      expect((await call(rig.server, '/api/v1/releases/unused/1.0', { headers: rig.admin })).status).toBe(404);
      const [audit] = (await rig.server.dataSource.query(
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
