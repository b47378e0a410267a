import request from 'supertest';
import { startTestServer, TestServer } from '../../test/start-test-server';

/** a route marked @AllowDevices (releases): devices authenticate with HTTP Basic id:credential */
const DEVICE_ROUTE = '/api/v1/releases/none/1.0/artifacts/none.btrfs/manifest';

describe('devices REST API', () => {
  let server: TestServer;
  let operator: { Authorization: string };
  let viewer: { Authorization: string };

  beforeAll(async () => {
    server = await startTestServer();
    const admin = { Authorization: `Bearer ${server.adminToken}` };
    const op = await http().post('/api/v1/tokens').set(admin).send({ name: 'ops', role: 'operator' }).expect(201);
    const view = await http().post('/api/v1/tokens').set(admin).send({ name: 'watcher', role: 'viewer' }).expect(201);
    operator = { Authorization: `Bearer ${op.body.token}` };
    viewer = { Authorization: `Bearer ${view.body.token}` };
  });

  afterAll(async () => {
    await server?.close();
  });

  const http = () => request(server.httpUrl);

  it('provisions a device, returns its credential once and never shows it again', async () => {
    const created = await http()
      .post('/api/v1/devices')
      .set(operator)
      .send({ id: 'gw-0001', tags: ['canary', 'canary', 'site=berlin'] })
      .expect(201);
    expect(created.body.credential).toMatch(/^cwd_[A-Za-z0-9_-]{43}$/);
    expect(created.body.device).toMatchObject({
      id: 'gw-0001',
      tags: ['canary', 'site=berlin'],
      status: 'active',
      online: false,
    });

    const shown = await http().get('/api/v1/devices/gw-0001').set(viewer).expect(200);
    const listed = await http().get('/api/v1/devices').set(viewer).expect(200);
    for (const body of [shown.body, listed.body]) {
      const text = JSON.stringify(body);
      expect(text).not.toContain(created.body.credential);
      expect(text).not.toMatch(/credential/i);
    }
    const rows = await server.dataSource.query('SELECT credential_hash FROM devices WHERE id = $1', ['gw-0001']);
    expect(rows[0].credential_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0].credential_hash).not.toContain(created.body.credential);

    const audit = await http()
      .get('/api/v1/audit')
      .query({ subjectType: 'device', subjectId: 'gw-0001' })
      .set(viewer)
      .expect(200);
    expect(audit.body.items).toEqual([
      expect.objectContaining({
        action: 'device.provisioned',
        actorType: 'operator',
        actorName: 'ops',
        after: { id: 'gw-0001', tags: ['canary', 'site=berlin'] },
      }),
    ]);
  });

  it('refuses duplicates (409), bad ids (400), viewers (403) and unknown ids (404)', async () => {
    await http().post('/api/v1/devices').set(operator).send({ id: 'gw-dup' }).expect(201);
    const conflict = await http().post('/api/v1/devices').set(operator).send({ id: 'gw-dup' }).expect(409);
    expect(conflict.body.error.code).toBe('DEVICE_EXISTS');
    for (const id of ['../etc', 'a/b', '', 'x'.repeat(65), 'a..b']) {
      await http().post('/api/v1/devices').set(operator).send({ id }).expect(400);
    }
    await http()
      .post('/api/v1/devices')
      .set(operator)
      .send({ id: 'gw-tags', tags: ['bad tag'] })
      .expect(400);
    await http().post('/api/v1/devices').set(viewer).send({ id: 'gw-viewer' }).expect(403);
    await http().get('/api/v1/devices/nope').set(viewer).expect(404);
    await http().patch('/api/v1/devices/nope').set(operator).send({ tags: [] }).expect(404);
    await http().post('/api/v1/devices/nope/decommission').set(operator).send({ reason: 'x' }).expect(404);
  });

  it('bulk-provisions a CSV file: generated credentials returned once, factory ones stored hashed', async () => {
    const factory = 'factory-credential-0123456789-abcdef';
    const csv = `id,tags,credential\ncsv-1,line-a;rack=3,${factory}\ncsv-2,line-a,\n"csv-3",,\n`;
    const res = await http()
      .post('/api/v1/devices/bulk')
      .set(operator)
      .set('Content-Type', 'text/csv')
      .send(csv)
      .expect(201);
    expect(res.body.created).toBe(3);
    expect(res.body.devices[0]).toEqual({ id: 'csv-1' });
    expect(res.body.devices[1].credential).toMatch(/^cwd_/);
    expect(res.body.devices[2].credential).toMatch(/^cwd_/);
    const device = await http().get('/api/v1/devices/csv-1').set(viewer).expect(200);
    expect(device.body.tags).toEqual(['line-a', 'rack=3']);
    const rows = await server.dataSource.query('SELECT credential_hash FROM devices WHERE id = $1', ['csv-1']);
    expect(rows[0].credential_hash).not.toContain(factory);
  });

  it('bulk-provisions a JSON list and creates nothing when a row is bad (422 with line and reason)', async () => {
    const ok = await http()
      .post('/api/v1/devices/bulk')
      .set(operator)
      .send({ devices: [{ id: 'json-1', tags: ['x'] }, { id: 'json-2' }] })
      .expect(201);
    expect(ok.body.created).toBe(2);

    const bad = await http()
      .post('/api/v1/devices/bulk')
      .set(operator)
      .send({ devices: [{ id: 'json-3' }, { id: 'json-1' }, { id: 'bad id' }, { id: 'json-3' }] })
      .expect(422);
    expect(bad.body.error.code).toBe('DEVICE_LIST_INVALID');
    expect(bad.body.error.details.rows).toEqual([
      { line: 3, id: 'bad id', reason: expect.stringMatching(/invalid device id/) },
      { line: 4, id: 'json-3', reason: 'duplicate of line 1' },
    ]);
    // the parse errors come first; with them fixed, the id that exists already is named
    const taken = await http()
      .post('/api/v1/devices/bulk')
      .set(operator)
      .set('Content-Type', 'text/csv')
      .send('id\njson-4\njson-1\n')
      .expect(422);
    expect(taken.body.error.details.rows).toEqual([{ line: 3, id: 'json-1', reason: 'already provisioned' }]);
    await http().get('/api/v1/devices/json-3').set(viewer).expect(404);
    await http().get('/api/v1/devices/json-4').set(viewer).expect(404);

    await http()
      .post('/api/v1/devices/bulk')
      .set(operator)
      .set('Content-Type', 'text/plain')
      .send('id\nx\n')
      .expect(400);
    const tooBig = 'id\n' + 'x'.repeat(5 * 1024 * 1024);
    await http().post('/api/v1/devices/bulk').set(operator).set('Content-Type', 'text/csv').send(tooBig).expect(413);
  });

  it('filters by tags, status, id substring and release, and pages with a stable cursor', async () => {
    const devices = Array.from({ length: 25 }, (_, i) => ({
      id: `fleet-${String(i).padStart(2, '0')}`,
      tags: ['fleet', i % 2 === 0 ? 'even' : 'odd', ...(i % 5 === 0 ? ['five'] : [])],
    }));
    await http().post('/api/v1/devices/bulk').set(operator).send({ devices }).expect(201);
    // a device state as the MQTT ingest writes it, so the release filter has something to find
    await server.dataSource.query(
      `UPDATE devices SET booted_release = 'base@2.0', online = true WHERE id IN ('fleet-03', 'fleet-07')`,
    );

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: Record<string, string | number> = { tag: 'fleet', limit: 10 };
      if (cursor) query.cursor = cursor;
      const page: request.Response = await http().get('/api/v1/devices').query(query).set(viewer).expect(200);
      seen.push(...page.body.items.map((d: { id: string }) => d.id));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(devices.map((d) => d.id));

    const both = await http().get('/api/v1/devices?tag=even&tag=five').set(viewer).expect(200);
    expect(both.body.items.map((d: { id: string }) => d.id)).toEqual(['fleet-00', 'fleet-10', 'fleet-20']);
    const search = await http().get('/api/v1/devices').query({ q: 'EET-1', tag: 'odd' }).set(viewer).expect(200);
    expect(search.body.items.map((d: { id: string }) => d.id)).toEqual([
      'fleet-11',
      'fleet-13',
      'fleet-15',
      'fleet-17',
      'fleet-19',
    ]);
    const release = await http().get('/api/v1/devices').query({ release: 'base@2.0' }).set(viewer).expect(200);
    expect(release.body.items.map((d: { id: string }) => d.id)).toEqual(['fleet-03', 'fleet-07']);
    const online = await http().get('/api/v1/devices').query({ online: 'true', tag: 'fleet' }).set(viewer).expect(200);
    expect(online.body.items).toHaveLength(2);
    const offline = await http()
      .get('/api/v1/devices')
      .query({ online: 'false', tag: 'fleet' })
      .set(viewer)
      .expect(200);
    expect(offline.body.items).toHaveLength(23);
    const wildcard = await http().get('/api/v1/devices').query({ q: '%' }).set(viewer).expect(200);
    expect(wildcard.body.items).toEqual([]);

    await http().get('/api/v1/devices').query({ limit: 501 }).set(viewer).expect(400);
    await http().get('/api/v1/devices').query({ cursor: 'garbage' }).set(viewer).expect(400);
    await http().get('/api/v1/devices').query({ online: 'maybe' }).set(viewer).expect(400);
  });

  it('replaces tags with an audit entry holding before and after', async () => {
    await http()
      .post('/api/v1/devices')
      .set(operator)
      .send({ id: 'gw-retag', tags: ['a'] })
      .expect(201);
    const res = await http()
      .patch('/api/v1/devices/gw-retag')
      .set(operator)
      .send({ tags: ['b', 'c'] })
      .expect(200);
    expect(res.body.tags).toEqual(['b', 'c']);
    await http().patch('/api/v1/devices/gw-retag').set(viewer).send({ tags: [] }).expect(403);
    const audit = await http()
      .get('/api/v1/audit')
      .query({ subjectId: 'gw-retag', action: 'device.tags-changed' })
      .set(viewer)
      .expect(200);
    expect(audit.body.items[0]).toMatchObject({ before: ['a'], after: ['b', 'c'], actorName: 'ops' });
  });

  it('decommissions a device: status kept, credential revoked, second time 409, commands refused', async () => {
    const created = await http().post('/api/v1/devices').set(operator).send({ id: 'gw-old' }).expect(201);
    const res = await http()
      .post('/api/v1/devices/gw-old/decommission')
      .set(operator)
      .send({ reason: 'RMA 42' })
      .expect(200);
    expect(res.body).toMatchObject({ id: 'gw-old', status: 'decommissioned', decommissionReason: 'RMA 42' });
    const rows = await server.dataSource.query('SELECT credential_hash FROM devices WHERE id = $1', ['gw-old']);
    expect(rows[0].credential_hash).toBeNull();
    await http().post('/api/v1/devices/gw-old/decommission').set(operator).send({ reason: 'again' }).expect(409);
    await http().post('/api/v1/devices/gw-old/commands').set(operator).send({ type: 'reboot' }).expect(409);
    // the revoked credential no longer opens device routes
    await http().get(DEVICE_ROUTE).auth('gw-old', created.body.credential).expect(401);
    const listed = await http().get('/api/v1/devices').query({ status: 'decommissioned' }).set(viewer).expect(200);
    expect(listed.body.items.map((d: { id: string }) => d.id)).toEqual(['gw-old']);
    const audit = await http()
      .get('/api/v1/audit')
      .query({ subjectId: 'gw-old', action: 'device.decommissioned' })
      .set(viewer)
      .expect(200);
    expect(audit.body.items[0]).toMatchObject({ reason: 'RMA 42', actorName: 'ops' });
  });

  it('validates commands against the protocol before storing them', async () => {
    await http().post('/api/v1/devices').set(operator).send({ id: 'gw-cmd' }).expect(201);
    const bad = await http()
      .post('/api/v1/devices/gw-cmd/commands')
      .set(operator)
      .send({ type: 'switch', snapshot: '../etc' })
      .expect(400);
    expect(bad.body.error.message).toMatch(/snapshot/);
    await http().post('/api/v1/devices/gw-cmd/commands').set(operator).send({ type: 'install' }).expect(400);
    await http()
      .post('/api/v1/devices/gw-cmd/commands')
      .set(operator)
      .send({ type: 'delete', snapshots: [] })
      .expect(400);
    await http()
      .post('/api/v1/devices/gw-cmd/commands')
      .set(operator)
      .send({ type: 'cancel', targetCommandId: '00000000-0000-4000-8000-000000000000' })
      .expect(404);
    await http().post('/api/v1/devices/gw-cmd/commands').set(viewer).send({ type: 'reboot' }).expect(403);
    const queued = await http()
      .post('/api/v1/devices/gw-cmd/commands')
      .set(operator)
      .send({
        type: 'switch',
        snapshot: 'base-1',
        reboot: { mode: 'window', window: { start: '02:00', end: '04:00' } },
      })
      .expect(201);
    // the device is not connected: stored, sent when it subscribes
    expect(queued.body).toMatchObject({
      type: 'switch',
      status: 'queued',
      payload: { v: 1, commandId: queued.body.id, snapshot: 'base-1' },
    });
    const list = await http().get('/api/v1/devices/gw-cmd/commands').set(viewer).expect(200);
    expect(list.body.items.map((c: { id: string }) => c.id)).toEqual([queued.body.id]);
    await http().get(`/api/v1/devices/gw-cmd/commands/${queued.body.id}`).set(viewer).expect(200);
    await http().get('/api/v1/devices/gw-cmd/commands/not-a-uuid').set(viewer).expect(404);
  });

  it('lets @AllowDevices routes authenticate a device by its credential (DEVICE_AUTHENTICATOR)', async () => {
    const created = await http().post('/api/v1/devices').set(operator).send({ id: 'gw-basic' }).expect(201);
    // authenticated, then 404 because the release does not exist
    await http().get(DEVICE_ROUTE).auth('gw-basic', created.body.credential).expect(404);
    await http().get(DEVICE_ROUTE).auth('gw-basic', 'wrong-credential').expect(401);
    await http().get(DEVICE_ROUTE).auth('nobody', created.body.credential).expect(401);
  });
});
