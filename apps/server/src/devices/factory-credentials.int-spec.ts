import { createHash, createHmac } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { startTestServer, TestServer } from '../../test/start-test-server';

/** a route marked @AllowDevices: 404 once the device is authenticated, 401 when not */
const DEVICE_ROUTE = '/api/v1/releases/none/1.0/artifacts/none.btrfs/manifest';
const FACTORY = 'k3Jd9-Qx7mPz2LwVt8Rb4NcY';

describe('factory device credentials', () => {
  let server: TestServer;
  const http = () => request(server.httpUrl);
  const admin = () => ({ Authorization: `Bearer ${server.adminToken}` });
  const storedHash = async (id: string): Promise<string> =>
    (
      (await server.dataSource.query('SELECT credential_hash FROM devices WHERE id = $1', [id])) as Array<{
        credential_hash: string;
      }>
    )[0].credential_hash;

  beforeAll(async () => {
    server = await startTestServer();
  });

  let closed = false;
  afterAll(async () => {
    if (!closed) await server?.close();
  });

  it('are stored under a keyed hash whose key is not in the database, and open device routes', async () => {
    await http()
      .post('/api/v1/devices/bulk')
      .set(admin())
      .send({
        devices: [
          { id: 'fac-1', credential: FACTORY },
          { id: 'fac-2', credential: FACTORY },
        ],
      })
      .expect(201);
    const keyPath = join(server.dataDir, 'credential.key');
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyPath, 'utf8').trim();
    const keyId = createHash('sha256').update(key).digest('hex').slice(0, 12);
    const digest = createHmac('sha256', key).update(`fac-1:${FACTORY}`).digest('hex');
    expect(await storedHash('fac-1')).toBe(`hmac-sha256$${keyId}$${digest}`);
    // salted by the device id: the same credential on two devices is stored differently
    expect(await storedHash('fac-2')).not.toBe(await storedHash('fac-1'));
    expect(await storedHash('fac-1')).not.toContain(createHash('sha256').update(FACTORY).digest('hex'));

    await http().get(DEVICE_ROUTE).auth('fac-1', FACTORY).expect(404);
    await http().get(DEVICE_ROUTE).auth('fac-1', `${FACTORY}x`).expect(401);
  });

  it('refuses guessable factory credentials with the reason', async () => {
    const res = await http()
      .post('/api/v1/devices/bulk')
      .set(admin())
      .send({ devices: [{ id: 'fac-weak', credential: 'password1234password1234' }] })
      .expect(422);
    expect(res.body.error.details.rows).toEqual([
      { line: 1, id: 'fac-weak', reason: expect.stringMatching(/too guessable/) },
    ]);
  });

  it('keep working when stored by an earlier version as plain sha256, and are rehashed on first login', async () => {
    await http().post('/api/v1/devices').set(admin()).send({ id: 'fac-old' }).expect(201);
    const legacy = createHash('sha256').update(FACTORY).digest('hex');
    await server.dataSource.query('UPDATE devices SET credential_hash = $1 WHERE id = $2', [legacy, 'fac-old']);
    await http().get(DEVICE_ROUTE).auth('fac-old', FACTORY).expect(404);
    expect(await storedHash('fac-old')).toMatch(/^hmac-sha256\$/);
    await http().get(DEVICE_ROUTE).auth('fac-old', FACTORY).expect(404);
  });

  it('make the server refuse to start with another credential key', async () => {
    await server.close({ keepData: true });
    closed = true;
    // (a failed start removes the test database and data dir)
    await expect(
      startTestServer({ reuse: server, env: { COWROOT_CREDENTIAL_KEY: 'another-key-of-at-least-32-characters' } }),
    ).rejects.toThrow(/hashed with credential key \w+, this server has \w+: set COWROOT_CREDENTIAL_KEY/);
  });
});
