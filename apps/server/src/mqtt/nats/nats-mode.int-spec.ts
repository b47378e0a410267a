import { randomUUID } from 'node:crypto';
import { DeviceChannel } from '@cowroot/protocol';
import { AgentLogger } from '../../../../agent/src/logger';
import { fetchBrokerToken } from '../../../../agent/src/mqtt/broker-token';
import { MqttLink } from '../../../../agent/src/mqtt/mqtt-link';
import { freePort } from '@cowroot/testing/free-port';
import { SimulatedDevice } from '../../../../../tools/fleet-sim/src/simulated-device';
import { tempDir } from '../../../../../tools/nats/nats-fixture';
import { brokerTokenFetcher, NatsDeployment, startNatsDeployment } from '../../../../../tools/nats/nats-deployment';
import { startTestServer, TestServer } from '../../../test/start-test-server';
import { provisionDevices, seedRelease, waitFor } from '../../rollouts/testing/rollout-fixtures';
import { adminApi } from '../../../test/admin-api';

jest.setTimeout(90_000);

/**
 * BROKER=nats on one real nats-server 2.9 node and one replica: devices fetch a broker JWT, speak MQTT to
 * NATS, their reports reach the database through JetStream, presence comes from NATS's connect events, and a
 * rollout completes with one install command per device. The 3-node scenario with kill -9 is
 * `npm run test:cluster` (apps/server/src/mqtt/nats/testing/).
 */
describe('BROKER=nats, single node', () => {
  const tmp = tempDir('cowroot-nats-mode-');
  let nats: NatsDeployment;
  let server: TestServer;
  const devices: SimulatedDevice[] = [];

  beforeAll(async () => {
    nats = await startNatsDeployment(tmp.dir, 1);
    server = await startTestServer({ env: nats.serverEnv });
  });

  afterAll(async () => {
    await Promise.all(devices.map((device) => device.stop()));
    await server?.close();
    await nats?.stop();
    tmp.remove();
  });

  const api = adminApi(() => server);

  const count = async (sql: string, params: unknown[]) =>
    ((await server.dataSource.query(sql, params)) as { n: number }[])[0].n;

  it('issues broker JWTs only to the device itself, against its credential', async () => {
    const [device] = await provisionDevices(server, [{ id: 'nats-token' }]);
    const credential = (device as unknown as { options: { credential: string } }).options.credential;
    const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
    const post = (path: string, authorization: string) =>
      fetch(`${server.httpUrl}/api/v1/devices/${path}/broker-token`, { method: 'POST', headers: { authorization } });
    expect((await post('nats-token', basic('nats-token', 'wrong-credential'))).status).toBe(401);
    expect((await post('someone-else', basic('nats-token', credential))).status).toBe(403);
    const ok = await post('nats-token', basic('nats-token', credential));
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { token: string; expiresAt: string };
    const claims = JSON.parse(Buffer.from(body.token.split('.')[1], 'base64url').toString());
    expect(claims.name).toBe('device-nats-token');
    expect(claims.nats.pub.allow).toEqual(['cowroot.v1.devices.nats-token.>']);
    expect(claims.nats.sub.allow).toEqual(['cowroot.v1.devices.nats-token.>', '$MQTT.sub.>']);
    expect(Date.parse(body.expiresAt) - Date.now()).toBeGreaterThan(3500_000);
  });

  it('runs a rollout to completion over NATS: reports through JetStream, presence from connect events', async () => {
    await seedRelease(server.dataSource, { name: 'nats-os', version: '2' });
    const ids = Array.from({ length: 4 }, (_, i) => `nats-dev-${i}`);
    const created = await provisionDevices(
      server,
      ids.map((id) => ({ id, tags: ['nats-fleet'] })),
      100,
      (id, credential) => ({
        mqttUrl: nats.mqttUrls[0],
        mqttPassword: brokerTokenFetcher(server.httpUrl, id, credential),
        reconnect: true,
      }),
    );
    devices.push(...created);
    // a fresh node closes the first MQTT connects while it creates the account's $MQTT_ streams
    await Promise.all(created.map((device) => device.connectRetrying()));
    await waitFor(
      async () =>
        (await count(
          `SELECT count(*)::int AS n FROM devices WHERE id = ANY($1) AND booted_snapshot IS NOT NULL AND online`,
          [ids],
        )) === ids.length,
      20_000,
      'state reports and presence of every device',
    );

    const rollout = await api('POST', '/rollouts', {
      name: 'nats rollout',
      release: { name: 'nats-os', version: '2' },
      selector: { tags: ['nats-fleet'] },
      waves: [
        { count: 1, successPercent: 100, timeoutSeconds: 30 },
        { percent: 100, successPercent: 100, timeoutSeconds: 30 },
      ],
    });
    const done = await waitFor(
      async () => {
        const current = await api('GET', `/rollouts/${rollout.id}`);
        return current.status === 'completed' ? current : null;
      },
      45_000,
      'rollout completed',
    );
    expect(done.counts).toEqual({ confirmed: 4 });
    // one install command per device, each acknowledged through the events stream
    const installs = (await server.dataSource.query(
      `SELECT device_id, count(*)::int AS n, min(status) AS status FROM device_commands
        WHERE type = 'install' AND device_id = ANY($1) GROUP BY device_id ORDER BY device_id`,
      [ids],
    )) as { device_id: string; n: number; status: string }[];
    expect(installs).toEqual(ids.map((id) => ({ device_id: id, n: 1, status: 'confirmed' })));
    expect(created.every((device) => device.bootedSnapshot !== 'factory')).toBe(true);
  });

  it('the agent link in token mode: fetches a broker JWT, fails over past a dead broker, gets a command and receipts', async () => {
    const [device] = await provisionDevices(server, [{ id: 'nats-agent' }]);
    const credential = (device as unknown as { options: { credential: string } }).options.credential;
    await expect(fetchBrokerToken(server.httpUrl, 'nats-agent', 'not-the-credential', null)).rejects.toThrow(
      /HTTP 401/,
    );
    const dead = `mqtt://127.0.0.1:${await freePort()}`;
    const logs: string[] = [];
    const link = new MqttLink(
      {
        deviceId: 'nats-agent',
        credential,
        url: dead,
        failoverUrls: [nats.mqttUrls[0]],
        password: () => fetchBrokerToken(server.httpUrl, 'nats-agent', credential, null),
        ca: null,
        initialReconnectMs: 200,
        receipts: true,
      },
      new AgentLogger('nats-agent', (line) => logs.push(line)),
    );
    const commands: string[] = [];
    const receipted: string[] = [];
    link.on('command', (payload: Buffer) => commands.push(JSON.parse(payload.toString()).commandId));
    link.on('receipt', (payload: Buffer) => receipted.push(...JSON.parse(payload.toString()).eventIds));
    try {
      await link.start();
      await waitFor(async () => link.connected, 20_000, 'agent link connected through the second URL');
      // the SUBSCRIBE follows the CONNACK; the server re-sends open commands a second after the connect event
      const sent = await api('POST', '/devices/nats-agent/commands', { type: 'reboot' });
      await waitFor(async () => commands.includes(sent.id), 10_000, 'command delivered over NATS');
      // the log names the node it reached, not the first URL it was given
      expect(logs.some((line) => line.includes('"mqtt connected"') && line.includes(nats.mqttUrls[0]))).toBe(true);

      // docs/protocol.md §5.4: the server names every event it stored, and a resent one again
      const event = { v: 1, commandId: sent.id, eventId: randomUUID(), type: 'accepted', at: new Date().toISOString() };
      await link.publish(DeviceChannel.Events, event);
      await waitFor(async () => receipted.includes(event.eventId), 10_000, 'a receipt for the event');
      await link.publish(DeviceChannel.Events, event);
      await waitFor(
        async () => receipted.filter((id) => id === event.eventId).length === 2,
        10_000,
        'a second receipt',
      );
      const stored = await count(`SELECT count(*)::int AS n FROM device_job_events WHERE event_id = $1`, [
        event.eventId,
      ]);
      expect(stored).toBe(1);
    } finally {
      await link.stop(false);
    }
  });

  it('decommissioning revokes the device JWTs: NATS closes its connection', async () => {
    const device = devices[0];
    await waitFor(async () => device.connected, 10_000, 'device connected');
    await api('POST', `/devices/${device.id}/decommission`, { reason: 'nats revocation test' });
    await waitFor(async () => !device.connected, 10_000, 'connection closed by NATS');
    const audit = await count(
      `SELECT count(*)::int AS n FROM audit_log WHERE subject_id = $1 AND action = 'device.decommissioned'`,
      [device.id],
    );
    expect(audit).toBe(1);
  });
});
