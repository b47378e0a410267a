import { connectAsync } from 'mqtt';
import request from 'supertest';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { LOGIN_THROTTLE } from './login-throttle';

/**
 * Every test of this file fails logins from 127.0.0.1, so they share one source bucket: they run in order
 * and the flood comes last.
 */
describe('failed logins', () => {
  let server: TestServer;
  const http = () => request(server.httpUrl);
  const admin = () => ({ Authorization: `Bearer ${server.adminToken}` });

  let firstFailureAt = 0;

  beforeAll(async () => {
    server = await startTestServer();
    firstFailureAt = Date.now();
  });

  afterAll(async () => {
    await server?.close();
  });

  const provision = async (id: string): Promise<string> =>
    (await http().post('/api/v1/devices').set(admin()).send({ id }).expect(201)).body.credential;

  /** The CONNACK return code of a refused CONNECT, or 0 when accepted. */
  const connackCode = async (id: string, password: string): Promise<number> => {
    try {
      const client = await connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
        clientId: id,
        username: id,
        password,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
      await client.endAsync(true);
      return 0;
    } catch (error) {
      return (error as { code?: number }).code ?? -1;
    }
  };

  const failures = async (): Promise<Record<string, number>> => {
    const text = (await http().get('/metrics').expect(200)).text;
    const counts: Record<string, number> = {};
    for (const match of text.matchAll(/^cowroot_auth_failures_total\{channel="(\w+)",reason="(\w+)"\} (\d+)/gm)) {
      counts[`${match[1]}/${match[2]}`] = Number(match[3]);
    }
    return counts;
  };

  it('gives unknown and decommissioned devices the same CONNACK code and the same HTTP answer', async () => {
    const credential = await provision('gw-retired');
    await http().post('/api/v1/devices/gw-retired/decommission').set(admin()).send({ reason: 'RMA' }).expect(200);
    const unknown = await connackCode('gw-never-was', credential);
    const retired = await connackCode('gw-retired', credential);
    expect(unknown).toBe(4);
    expect(retired).toBe(unknown);

    const download = '/api/v1/releases/base/1.0.0/artifacts/full.btrfs.zst/manifest';
    const asUnknown = await http().get(download).auth('gw-never-was', credential);
    const asRetired = await http().get(download).auth('gw-retired', credential);
    expect(asUnknown.status).toBe(401);
    expect({ status: asRetired.status, message: asRetired.body.error.message }).toEqual({
      status: asUnknown.status,
      message: asUnknown.body.error.message,
    });
    expect(await failures()).toMatchObject({
      'mqtt/unknown_device': 1,
      'mqtt/decommissioned': 1,
      'http_basic/unknown_device': 1,
      'http_basic/decommissioned': 1,
    });
  });

  it('throttles MQTT CONNECTs per device after repeated wrong credentials, even with the right one', async () => {
    const credential = await provision('gw-guessed');
    // all at once, so that no token refills in between (one per 6 s)
    const wrong = await Promise.all(
      Array.from({ length: LOGIN_THROTTLE.identity.burst }, (_, i) => connackCode('gw-guessed', `wrong-${i}`)),
    );
    expect(wrong).toEqual(Array(LOGIN_THROTTLE.identity.burst).fill(4));
    // refused unchecked, as "server unavailable" so a device retries later
    expect(await connackCode('gw-guessed', credential)).toBe(3);
    // another device from the same address still connects
    expect(await connackCode('gw-other', await provision('gw-other'))).toBe(0);
    const counts = await failures();
    expect(counts['mqtt/wrong_credential']).toBe(LOGIN_THROTTLE.identity.burst);
    expect(counts['mqtt/throttled']).toBe(1);
  });

  it('throttles a flood of wrong bearer tokens from one address with 429 and Retry-After', async () => {
    const statuses: Record<number, number> = {};
    let retryAfter: string | undefined;
    for (let round = 0; round < 20; round++) {
      const replies = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          http().get('/api/v1/audit').set('Authorization', `Bearer cwr_wrong_${round}_${i}`),
        ),
      );
      for (const reply of replies) {
        statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
        if (reply.status === 429) {
          retryAfter = reply.headers['retry-after'];
          expect(reply.body.error).toMatchObject({ code: 'TOO_MANY_REQUESTS', correlationId: expect.any(String) });
        }
      }
    }
    // at most the burst plus what refilled since this file's first failure (the same source bucket)
    const refilled = ((Date.now() - firstFailureAt) / 1000) * LOGIN_THROTTLE.source.refillPerSecond;
    expect((statuses[401] ?? 0) + (statuses[429] ?? 0)).toBe(2000);
    expect(statuses[401]).toBeLessThanOrEqual(LOGIN_THROTTLE.source.burst + Math.ceil(refilled));
    expect(Number(retryAfter)).toBeGreaterThan(0);
    const counts = await failures();
    expect(counts['rest_bearer/unknown_token']).toBe(statuses[401]);
    expect(counts['rest_bearer/throttled']).toBe(statuses[429]);
  });
});
