import { parseCommand } from '@cowroot/protocol';
import { MqttClient, connectAsync } from 'mqtt';
import request from 'supertest';
import { eventually } from '../../test/eventually';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { DevicePresenceService } from '../devices/device-presence.service';

const topic = (deviceId: string, channel: string) => `cowroot/v1/devices/${deviceId}/${channel}`;

/** Many CONNECTs at once share the batched credential lookups, presence writes and re-send lookups (issue 12). */
describe('MQTT connect storm (batched per-connect queries)', () => {
  let server: TestServer;
  let operator: { Authorization: string };
  const clients: MqttClient[] = [];
  const http = () => request(server.httpUrl);

  beforeAll(async () => {
    server = await startTestServer();
    const token = await http()
      .post('/api/v1/tokens')
      .set({ Authorization: `Bearer ${server.adminToken}` })
      .send({ name: 'ops', role: 'operator' })
      .expect(201);
    operator = { Authorization: `Bearer ${token.body.token}` };
  });

  afterAll(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true).catch(() => undefined)));
    await server?.close();
  });

  const provision = async (id: string): Promise<string> =>
    (await http().post('/api/v1/devices').set(operator).send({ id }).expect(201)).body.credential;

  const connect = async (id: string, password: string): Promise<MqttClient> => {
    const client = await connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
      clientId: id,
      username: id,
      password,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };

  it('answers every CONNECT of a storm on its own merits, re-sends each device its own commands, audits once', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `storm-${i}`);
    const credentials = await Promise.all(ids.map(provision));
    const gone = await provision('storm-gone');
    await http().post('/api/v1/devices/storm-gone/decommission').set(operator).send({ reason: 'test' }).expect(200);
    // one queued command per device while offline: each must reach its own device only
    const commandOf = new Map<string, string>();
    for (const id of ids.slice(0, 10)) {
      const res = await http()
        .post(`/api/v1/devices/${id}/commands`)
        .set(operator)
        .send({ type: 'delete', snapshots: [`old-${id}`] })
        .expect(201);
      commandOf.set(id, res.body.id);
    }
    const inbox = new Map<string, string[]>();

    const good = ids.map(async (id, i) => {
      const client = await connect(id, credentials[i]);
      client.on('message', (_topic, payload) => {
        const parsed = parseCommand(payload);
        if (parsed.ok) inbox.set(id, [...(inbox.get(id) ?? []), parsed.value.commandId]);
      });
      await client.subscribeAsync(topic(id, 'commands'), { qos: 1 });
    });
    const bad = [
      connect('storm-0', 'wrong-credential'),
      connect('storm-nobody', credentials[1]),
      connect('storm-gone', gone),
    ];
    const [goodResults, badResults] = await Promise.all([Promise.allSettled(good), Promise.allSettled(bad)]);
    expect(goodResults.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(badResults.map((r) => r.status === 'rejected' && (r.reason as { code?: number }).code)).toEqual([4, 4, 4]);

    await eventually(async () => {
      const rows: Array<{ n: number }> = await server.dataSource.query(
        `SELECT count(*)::int AS n FROM devices WHERE id = ANY($1) AND online`,
        [ids],
      );
      expect(rows[0].n).toBe(ids.length);
    }, 10_000);
    await eventually(async () => {
      for (const [id, commandId] of commandOf) expect(inbox.get(id)).toEqual([commandId]);
    }, 10_000);
    expect([...inbox.keys()].sort()).toEqual([...commandOf.keys()].sort());
    const audits: Array<{ subject_id: string; n: number }> = await server.dataSource.query(
      `SELECT subject_id, count(*)::int AS n FROM audit_log
        WHERE action = 'device.state.online' AND subject_id LIKE 'storm-%' GROUP BY subject_id`,
    );
    expect(audits).toHaveLength(ids.length);
    expect(audits.every((row) => row.n === 1)).toBe(true);
  });

  it('a presence write the database cannot take fails alone; the others of its batch are applied', async () => {
    const presence = server.app.get(DevicePresenceService);
    const ids = ['storm-iso-a', 'storm-iso-b', 'storm-iso-c'];
    for (const id of ids) await provision(id);
    const results = await Promise.allSettled([
      presence.markOnline(ids[0], 'test', new Date()),
      presence.markOnline(ids[1], 'test', new Date(NaN)),
      presence.markOnline(ids[2], 'test', new Date()),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const rows: Array<{ id: string; online: boolean }> = await server.dataSource.query(
      `SELECT id, online FROM devices WHERE id = ANY($1) ORDER BY id`,
      [ids],
    );
    expect(rows.map((row) => row.online)).toEqual([true, false, true]);
  });
});
