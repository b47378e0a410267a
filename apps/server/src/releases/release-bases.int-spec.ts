import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { MANIFEST_FORMAT, signManifest } from '@cowroot/protocol';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliInProcess } from '../../../cli/test/run-cli';
import { startTestServer, TestServer } from '../../test/start-test-server';
import {
  committedSnapshot,
  provisionDevices,
  receivedSnapshot,
  seedRelease,
} from '../rollouts/testing/rollout-fixtures';

// Integration: the real server (PostgreSQL when TEST_DATABASE_URL is set, else PGlite) over HTTP on loopback.
describe('GET /api/v1/release-bases/:name (issue 14: build deltas for what the fleet holds)', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  async function get(path: string): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${server.httpUrl}${path}`, {
      headers: { Authorization: `Bearer ${server.adminToken}` },
    });
    return { status: response.status, body: await response.json() };
  }

  it('counts the active devices holding a read-only snapshot received from each release, tag-filtered', async () => {
    const v1 = await seedRelease(server.dataSource, { name: 'os', version: '1' });
    const v2 = await seedRelease(server.dataSource, { name: 'os', version: '2' });
    const other = await seedRelease(server.dataSource, { name: 'other', version: '1' });
    await provisionDevices(server, [
      { id: 'base-a', tags: ['lab'] },
      { id: 'base-b', tags: ['lab', 'field'] },
      { id: 'base-c', tags: ['field'] },
      { id: 'base-gone', tags: ['lab'] },
    ]);
    const writable = { ...receivedSnapshot('rw', v2.snapshotUuid, { name: 'os', version: '2' }), readOnly: false };
    const inventories: Record<string, unknown[]> = {
      'base-a': [receivedSnapshot('os-1', v1.snapshotUuid, { name: 'os', version: '1' })],
      'base-b': [
        receivedSnapshot('os-1', v1.snapshotUuid, { name: 'os', version: '1' }),
        receivedSnapshot('os-2', v2.snapshotUuid, { name: 'os', version: '2' }),
        receivedSnapshot('other-1', other.snapshotUuid, { name: 'other', version: '1' }),
      ],
      // a writable copy and a committed snapshot cannot be the parent of a stream
      'base-c': [writable, committedSnapshot('local')],
      'base-gone': [receivedSnapshot('os-1', v1.snapshotUuid, { name: 'os', version: '1' })],
    };
    for (const [id, snapshots] of Object.entries(inventories)) {
      await server.dataSource.query(`UPDATE devices SET snapshots = $2::jsonb WHERE id = $1`, [
        id,
        JSON.stringify(snapshots),
      ]);
    }
    await server.dataSource.query(
      `UPDATE devices SET status = 'decommissioned', credential_hash = NULL WHERE id = 'base-gone'`,
    );

    expect(await get('/api/v1/release-bases/os')).toEqual({
      status: 200,
      body: {
        name: 'os',
        bases: [
          { version: '1', devices: 2 },
          { version: '2', devices: 1 },
        ],
      },
    });
    expect((await get('/api/v1/release-bases/os?tag=field')).body).toEqual({
      name: 'os',
      bases: [
        { version: '1', devices: 1 },
        { version: '2', devices: 1 },
      ],
    });
    expect((await get('/api/v1/release-bases/os?tag=lab,field')).body).toMatchObject({ bases: [{}, {}] });
    expect((await get('/api/v1/release-bases/os?tag=nobody')).body).toEqual({ name: 'os', bases: [] });
    expect((await get('/api/v1/release-bases/unknown')).body).toEqual({ name: 'unknown', bases: [] });

    // the CLI prints the same, as JSON for cowroot-release build --delta-from-fleet, or as a table
    const dir = await mkdtemp(join(tmpdir(), 'cowroot-bases-'));
    try {
      const env = { COWROOT_CONFIG: join(dir, 'config.json') };
      expect(
        (await runCliInProcess(['login', '--server', server.httpUrl, '--token', server.adminToken], env)).code,
      ).toBe(0);
      const json = await runCliInProcess(['releases', 'bases', 'os', '--tag', 'field', '--json'], env);
      expect(JSON.parse(json.stdout)).toEqual({
        name: 'os',
        bases: [
          { version: '1', devices: 1 },
          { version: '2', devices: 1 },
        ],
      });
      const table = await runCliInProcess(['releases', 'bases', 'os'], env);
      expect(table.stdout.split('\n').map((line) => line.trim().split(/\s+/))).toEqual(
        expect.arrayContaining([
          ['VERSION', 'DEVICES'],
          ['1', '2'],
          ['2', '1'],
        ]),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stores one delta artifact per parent beside the plain incremental, and lists it', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const admin = { Authorization: `Bearer ${server.adminToken}` };
    const json = { ...admin, 'Content-Type': 'application/json' };
    const post = (path: string, body: unknown) =>
      fetch(`${server.httpUrl}${path}`, { method: 'POST', headers: json, body: JSON.stringify(body) });
    expect(
      (
        await post('/api/v1/signing-keys', {
          name: 'delta-key',
          publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }),
        })
      ).status,
    ).toBe(201);
    const uuids = { '1': randomUUID(), '2': randomUUID(), '3': randomUUID() };
    const upload = async (
      version: '1' | '2' | '3',
      file: string,
      kind: string,
      extra: Record<string, unknown> = {},
    ) => {
      const body = randomBytes(1000);
      const manifest = Buffer.from(
        JSON.stringify({
          format: MANIFEST_FORMAT,
          release: { name: 'dl', version },
          kind,
          file,
          size: body.length,
          sha256: createHash('sha256').update(body).digest('hex'),
          compression: 'zstd',
          snapshotUuid: uuids[version],
          parent: kind === 'full' ? null : { release: { name: 'dl', version: '1' }, snapshotUuid: uuids['1'] },
          createdAt: new Date().toISOString(),
          ...extra,
        }),
      );
      return fetch(`${server.httpUrl}/api/v1/releases/dl/${version}/artifacts/${file}`, {
        method: 'PUT',
        headers: {
          ...admin,
          'Content-Type': 'application/octet-stream',
          'Content-Length': String(body.length),
          'X-Cowroot-Manifest': manifest.toString('base64'),
          'X-Cowroot-Signature': signManifest(manifest, privateKey),
        },
        body,
      });
    };
    const reconstructs = { reconstructs: { size: 5000, sha256: 'a'.repeat(64) } };
    for (const version of ['1', '2', '3'] as const)
      expect((await post('/api/v1/releases', { name: 'dl', version })).status).toBe(201);
    expect((await upload('1', 'dl-1-full.btrfs.zst', 'full')).status).toBe(201);
    expect((await upload('2', 'dl-2-full.btrfs.zst', 'full')).status).toBe(201);
    expect((await upload('2', 'dl-2-from-1.btrfs.zst', 'incremental')).status).toBe(201);
    expect((await upload('2', 'dl-2-from-1.delta.zst', 'delta', { ...reconstructs, deltaFormat: 3 })).status).toBe(201);
    const again = await upload('2', 'dl-2-from-1-b.delta.zst', 'delta', reconstructs);
    expect(again.status).toBe(409);
    expect(await again.text()).toMatch(/already has a delta from that parent/);
    // a manifest from a release tool older than deltaFormat names none
    expect((await upload('3', 'dl-3-from-1.delta.zst', 'delta', reconstructs)).status).toBe(201);
    type Listed = { kind: string; file: string; deltaFormat: number | null };
    const release = (await get('/api/v1/releases/dl/2')).body as { artifacts: Listed[] };
    expect(release.artifacts.map((a) => [a.kind, a.file, a.deltaFormat]).sort()).toEqual([
      ['delta', 'dl-2-from-1.delta.zst', 3],
      ['full', 'dl-2-full.btrfs.zst', null],
      ['incremental', 'dl-2-from-1.btrfs.zst', null],
    ]);
    const old = (await get('/api/v1/releases/dl/3')).body as { artifacts: Listed[] };
    expect(old.artifacts.map((a) => [a.file, a.deltaFormat])).toEqual([['dl-3-from-1.delta.zst', null]]);
    // the manifest's format is kept for planning (docs/rollouts.md "Dispatch"); null where it names none
    const formats = (await server.dataSource.query(
      `SELECT a.file, a.delta_format FROM release_artifacts a JOIN releases r ON r.id = a.release_id
        WHERE r.name = 'dl' ORDER BY a.file`,
    )) as { file: string; delta_format: number | null }[];
    expect(formats.filter((row) => row.delta_format !== null)).toEqual([
      { file: 'dl-2-from-1.delta.zst', delta_format: 3 },
    ]);
    // the upload's audit entry names a delta's format (null: its manifest names none); other kinds have none
    const audited = (await server.dataSource.query(
      `SELECT after FROM audit_log WHERE action = 'release.artifact.uploaded' AND subject_id LIKE 'dl/%'`,
    )) as { after: { file: string; deltaFormat?: number | null } }[];
    const formatOf = Object.fromEntries(
      audited.map(({ after }) => [after.file, 'deltaFormat' in after ? after.deltaFormat : 'absent']),
    );
    expect(formatOf).toEqual({
      'dl-1-full.btrfs.zst': 'absent',
      'dl-2-full.btrfs.zst': 'absent',
      'dl-2-from-1.btrfs.zst': 'absent',
      'dl-2-from-1.delta.zst': 3,
      'dl-3-from-1.delta.zst': null,
    });
  });
});
