import { CommandType, JobEventType, parseCommand } from '@cowroot/protocol';
import { IClientOptions, MqttClient, connectAsync } from 'mqtt';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { SNAPSHOT_UUID, stateReport } from '../../test/mqtt-fleet';
import { eventually } from '../../test/eventually';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { CommandDispatcher, CommandRequest } from '../devices/command-dispatcher.service';
import { DevicePresenceService } from '../devices/device-presence.service';

/** events.once would reject on the 'error' a reset connection also emits */
const closeOf = (client: MqttClient) => new Promise<void>((resolve) => client.once('close', () => resolve()));

const topic = (deviceId: string, channel: string) => `cowroot/v1/devices/${deviceId}/${channel}`;

describe('MQTT broker and device ingest', () => {
  let server: TestServer;
  let operator: { Authorization: string };
  const clients: MqttClient[] = [];

  const http = () => request(server.httpUrl);

  beforeAll(async () => {
    server = await startTestServer();
    expect(server.mqttPort).toBeGreaterThan(0);
    const token = await http()
      .post('/api/v1/tokens')
      .set({ Authorization: `Bearer ${server.adminToken}` })
      .send({ name: 'ops', role: 'operator' })
      .expect(201);
    operator = { Authorization: `Bearer ${token.body.token}` };
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true).catch(() => undefined)));
  });

  afterAll(async () => {
    await server?.close();
  });

  async function provision(id: string): Promise<string> {
    const res = await http().post('/api/v1/devices').set(operator).send({ id }).expect(201);
    return res.body.credential;
  }

  async function connect(id: string, password: string, options: IClientOptions = {}): Promise<MqttClient> {
    const client = await connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
      clientId: id,
      username: id,
      password,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    });
    // a connection the server cuts (ACL violation, oversized packet, decommission) surfaces as an error event
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  }

  async function device(id: string) {
    return (await http().get(`/api/v1/devices/${id}`).set(operator).expect(200)).body;
  }

  async function metric(name: string, labels: string): Promise<number> {
    const text = (await http().get('/metrics').expect(200)).text;
    const prefix = labels ? `${name}{${labels}} ` : `${name} `;
    const line = text.split('\n').find((l) => l.startsWith(prefix));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  async function auditActions(id: string): Promise<string[]> {
    const res = await http()
      .get('/api/v1/audit')
      .query({ subjectType: 'device', subjectId: id, limit: 200 })
      .set(operator)
      .expect(200);
    return res.body.items.map((e: { action: string }) => e.action);
  }

  it('refuses wrong credentials, unknown devices and a client id that is not the device id', async () => {
    const credential = await provision('mq-auth');
    await expect(connect('mq-auth', 'wrong-credential')).rejects.toMatchObject({ code: 4 });
    await expect(connect('mq-nobody', credential)).rejects.toMatchObject({ code: 4 });
    await expect(connect('mq-auth', credential, { clientId: 'someone-else' })).rejects.toMatchObject({ code: 2 });
    // the refused attempts left no session behind; the right credential gives the device its session
    expect((await device('mq-auth')).online).toBe(false);
    await connect('mq-auth', credential);
    await eventually(async () => expect((await device('mq-auth')).online).toBe(true));
  });

  it('persists a state report before acknowledging it, drops stale reports and audits transitions', async () => {
    const credential = await provision('mq-state');
    const client = await connect('mq-state', credential);
    await client.publishAsync(topic('mq-state', 'state'), JSON.stringify(stateReport(5)), { qos: 1 });
    // no polling: PUBACK comes after the commit
    expect(await device('mq-state')).toMatchObject({
      bootedSnapshot: 'base-1.0',
      bootedRelease: 'base@1.0',
      agentVersion: '0.1.0',
      trialBoot: false,
      fallbackSnapshot: 'base-1.0',
      freeBytes: 123456789,
      stateSeq: 5,
      snapshots: [
        expect.objectContaining({ id: 'base-1.0', uuid: SNAPSHOT_UUID, receivedUuid: SNAPSHOT_UUID, parentUuid: null }),
      ],
    });

    const staleBefore = await metric('cowroot_mqtt_messages_rejected_total', 'reason="STALE_STATE"');
    await client.publishAsync(topic('mq-state', 'state'), JSON.stringify(stateReport(3, { agentVersion: 'old' })), {
      qos: 1,
    });
    expect((await device('mq-state')).agentVersion).toBe('0.1.0');
    expect(await metric('cowroot_mqtt_messages_rejected_total', 'reason="STALE_STATE"')).toBe(staleBefore + 1);

    // a trial requested, then the agent restarts (seq from 0, later clock) in the trial boot
    await client.publishAsync(
      topic('mq-state', 'state'),
      JSON.stringify(stateReport(6, { pendingTrial: { snapshot: 'base-2.0', state: 'requested' } })),
      { qos: 1 },
    );
    const restarted = stateReport(0, {
      sentAt: new Date(Date.UTC(2026, 10, 25, 11)).toISOString(),
      bootedSnapshot: 'base-2.0',
      trialBoot: true,
      pendingTrial: { snapshot: 'base-2.0', state: 'trying' },
    });
    await client.publishAsync(topic('mq-state', 'state'), JSON.stringify(restarted), { qos: 1 });
    expect(await device('mq-state')).toMatchObject({
      stateSeq: 0,
      bootedSnapshot: 'base-2.0',
      bootedRelease: null,
      trialBoot: true,
    });

    const actions = await auditActions('mq-state');
    expect(actions).toEqual(
      expect.arrayContaining([
        'device.provisioned',
        'device.state.online',
        'device.state.booted-changed',
        'device.state.trial-requested',
        'device.state.trial-booted',
      ]),
    );
    const audit = await http()
      .get('/api/v1/audit')
      .query({ subjectId: 'mq-state', action: 'device.state.booted-changed' })
      .set(operator);
    expect(audit.body.items[0]).toMatchObject({
      actorType: 'device',
      actorId: 'mq-state',
      before: { snapshot: 'base-1.0', release: 'base@1.0' },
      after: { snapshot: 'base-2.0', release: null, trialBoot: true },
    });
  });

  it('rejects malformed, wrong-version and oversized messages, counts them, and keeps serving', async () => {
    const credential = await provision('mq-bad');
    const client = await connect('mq-bad', credential);
    const before = {
      malformed: await metric('cowroot_mqtt_messages_rejected_total', 'reason="MALFORMED_MESSAGE"'),
      version: await metric('cowroot_mqtt_messages_rejected_total', 'reason="UNSUPPORTED_PROTOCOL_VERSION"'),
      large: await metric('cowroot_mqtt_messages_rejected_total', 'reason="MESSAGE_TOO_LARGE"'),
      stateIn: await metric('cowroot_mqtt_messages_in_total', 'type="state"'),
    };
    await client.publishAsync(topic('mq-bad', 'state'), '{not json', { qos: 1 });
    await client.publishAsync(topic('mq-bad', 'state'), JSON.stringify({ ...stateReport(1), rootPassword: 'x' }), {
      qos: 1,
    });
    await client.publishAsync(topic('mq-bad', 'events'), JSON.stringify({ v: 1, type: 'confirmed' }), { qos: 1 });
    await client.publishAsync(topic('mq-bad', 'state'), JSON.stringify({ ...stateReport(1), v: 99 }), { qos: 1 });
    await client.publishAsync(topic('mq-bad', 'state'), Buffer.alloc(300 * 1024, 0x20), { qos: 1 });
    expect(await metric('cowroot_mqtt_messages_rejected_total', 'reason="MALFORMED_MESSAGE"')).toBe(
      before.malformed + 3,
    );
    expect(await metric('cowroot_mqtt_messages_rejected_total', 'reason="UNSUPPORTED_PROTOCOL_VERSION"')).toBe(
      before.version + 1,
    );
    expect(await metric('cowroot_mqtt_messages_rejected_total', 'reason="MESSAGE_TOO_LARGE"')).toBe(before.large + 1);
    expect(await metric('cowroot_mqtt_messages_in_total', 'type="state"')).toBe(before.stateIn + 4);
    expect((await device('mq-bad')).stateSeq).toBeNull();

    // same connection, still served: a valid report lands, HTTP answers
    expect(client.connected).toBe(true);
    await client.publishAsync(topic('mq-bad', 'state'), JSON.stringify(stateReport(1)), { qos: 1 });
    expect((await device('mq-bad')).stateSeq).toBe(1);
    await http().get('/readyz').expect(200);

    // a packet far beyond the limit is cut off at the socket before it is buffered
    const closed = closeOf(client);
    client.publish(topic('mq-bad', 'state'), Buffer.alloc(2 * 1024 * 1024, 0x20), { qos: 0 });
    await closed;
    const again = await connect('mq-bad', credential);
    await again.publishAsync(topic('mq-bad', 'state'), JSON.stringify(stateReport(2)), { qos: 1 });
    expect((await device('mq-bad')).stateSeq).toBe(2);
  });

  it('keeps device A out of device B: no publishing as B, no subscribing to B', async () => {
    const credA = await provision('mq-a');
    const credB = await provision('mq-b');
    const b = await connect('mq-b', credB);
    expect(await b.subscribeAsync(topic('mq-b', 'commands'), { qos: 1 })).toEqual([
      expect.objectContaining({ qos: 1 }),
    ]);
    const received: string[] = [];
    b.on('message', (t) => received.push(t));

    const a = await connect('mq-a', credA);
    // mqtt.js rejects a SUBACK that refuses; the packet carries the granted codes (0x80 = failure)
    const refused = await a
      .subscribeAsync([topic('mq-b', 'commands'), 'cowroot/v1/devices/+/commands', '#', topic('mq-a', 'state')])
      .then(
        () => null,
        (error: { packet?: { granted?: number[] } }) => error.packet?.granted,
      );
    expect(refused).toEqual([128, 128, 128, 128]);
    const aMessages: string[] = [];
    a.on('message', (t) => aMessages.push(t));

    const deniedBefore = await metric('cowroot_mqtt_messages_rejected_total', 'reason="ACL_DENIED"');
    const closed = closeOf(a);
    a.publish(
      topic('mq-b', 'commands'),
      JSON.stringify({ v: 1, type: 'reboot', commandId: randomUUID(), issuedAt: new Date().toISOString() }),
    );
    await closed;
    expect(await metric('cowroot_mqtt_messages_rejected_total', 'reason="ACL_DENIED"')).toBe(deniedBefore + 1);

    const a2 = await connect('mq-a', credA);
    const closed2 = closeOf(a2);
    a2.publish(topic('mq-b', 'state'), JSON.stringify(stateReport(9)));
    await closed2;
    expect((await device('mq-b')).stateSeq).toBeNull();

    // a real command for B reaches B only
    const sent = await http().post('/api/v1/devices/mq-b/commands').set(operator).send({ type: 'reboot' }).expect(201);
    await eventually(async () => expect(received).toEqual([topic('mq-b', 'commands')]));
    expect(aMessages).toEqual([]);
    expect(sent.body.status).toBe('sent');
  });

  it('tracks presence: online on connect, offline on clean disconnect and through the last will', async () => {
    const credential = await provision('mq-presence');
    const will = {
      topic: topic('mq-presence', 'presence'),
      payload: Buffer.from(JSON.stringify({ v: 1, status: 'offline' })),
      qos: 1 as const,
      retain: true,
    };
    const connected = Number(await metric('cowroot_devices_connected', ''));
    const client = await connect('mq-presence', credential, { will });
    await eventually(async () =>
      expect(await device('mq-presence')).toMatchObject({ online: true, lastConnectedAt: expect.any(String) }),
    );
    expect(await metric('cowroot_devices_connected', '')).toBe(connected + 1);
    await client.publishAsync(
      topic('mq-presence', 'presence'),
      JSON.stringify({ v: 1, status: 'online', at: new Date().toISOString() }),
      { qos: 1 },
    );

    // abrupt loss of the connection: the broker publishes the will
    client.stream.destroy();
    await eventually(async () => expect((await device('mq-presence')).online).toBe(false));
    const lastWill = await http()
      .get('/api/v1/audit')
      .query({ subjectId: 'mq-presence', action: 'device.state.offline' })
      .set(operator);
    expect(lastWill.body.items[0]).toMatchObject({ actorType: 'device', reason: 'last will: connection lost' });

    const again = await connect('mq-presence', credential, { will });
    await eventually(async () => expect((await device('mq-presence')).online).toBe(true));
    await again.endAsync();
    await eventually(async () => expect((await device('mq-presence')).online).toBe(false));
    const offline = await http()
      .get('/api/v1/audit')
      .query({ subjectId: 'mq-presence', action: 'device.state.offline' })
      .set(operator);
    expect(offline.body.items.map((e: { reason: string }) => e.reason)).toEqual([
      'disconnected',
      'last will: connection lost',
    ]);
    expect((await device('mq-presence')).lastSeenAt).toEqual(expect.any(String));
  });

  it('refuses and kicks a decommissioned device', async () => {
    const credential = await provision('mq-gone');
    const client = await connect('mq-gone', credential);
    await eventually(async () => expect((await device('mq-gone')).online).toBe(true));
    const closed = closeOf(client);
    await http().post('/api/v1/devices/mq-gone/decommission').set(operator).send({ reason: 'stolen' }).expect(200);
    await closed;
    await expect(connect('mq-gone', credential)).rejects.toMatchObject({ code: 4 });
    expect(await device('mq-gone')).toMatchObject({ status: 'decommissioned', online: false });
  });

  it('delivers REST commands with unique ids and applies job events once, in order of progress', async () => {
    const credential = await provision('mq-cmd');
    // issued while the device is offline: queued, then sent when it subscribes
    const early = await http()
      .post('/api/v1/devices/mq-cmd/commands')
      .set(operator)
      .send({ type: 'delete', snapshots: ['old-1'] })
      .expect(201);
    expect(early.body.status).toBe('queued');

    const client = await connect('mq-cmd', credential);
    const inbox: Array<Record<string, unknown>> = [];
    client.on('message', (_topic, payload) => {
      const parsed = parseCommand(payload);
      if (!parsed.ok) throw new Error(parsed.message);
      inbox.push(parsed.value as unknown as Record<string, unknown>);
    });
    await client.subscribeAsync(topic('mq-cmd', 'commands'), { qos: 1 });
    await eventually(async () => expect(inbox.map((c) => c.commandId)).toEqual([early.body.id]));

    const second = await http()
      .post('/api/v1/devices/mq-cmd/commands')
      .set(operator)
      .send({ type: 'switch', snapshot: 'base-1.0', reboot: { mode: 'never' } })
      .expect(201);
    await eventually(async () => expect(inbox).toHaveLength(2));
    expect(inbox[1]).toMatchObject({
      v: 1,
      type: 'switch',
      commandId: second.body.id,
      snapshot: 'base-1.0',
      reboot: { mode: 'never' },
    });
    expect(new Set(inbox.map((c) => c.commandId)).size).toBe(2);

    const event = (type: JobEventType, extra: Record<string, unknown> = {}) => ({
      v: 1,
      commandId: second.body.id,
      eventId: randomUUID(),
      type,
      at: new Date().toISOString(),
      ...extra,
    });
    const accepted = event(JobEventType.Accepted);
    const events = topic('mq-cmd', 'events');
    await client.publishAsync(events, JSON.stringify(accepted), { qos: 1 });
    const afterAccepted = await http()
      .get(`/api/v1/devices/mq-cmd/commands/${second.body.id}`)
      .set(operator)
      .expect(200);
    expect(afterAccepted.body.status).toBe('accepted');

    // the same event redelivered (QoS 1 DUP) is stored once
    await client.publishAsync(events, JSON.stringify(accepted), { qos: 1, dup: true });
    await client.publishAsync(events, JSON.stringify(event(JobEventType.Staged, { snapshot: 'base-1.0' })), { qos: 1 });
    // a late progress report does not move the status back
    await client.publishAsync(
      events,
      JSON.stringify(event(JobEventType.Progress, { progress: { phase: 'download', bytesDone: 1 } })),
      { qos: 1 },
    );
    const stored = await http().get('/api/v1/devices/mq-cmd/events').set(operator).expect(200);
    expect(stored.body.items.map((e: { type: string }) => e.type)).toEqual(['progress', 'staged', 'accepted']);
    expect(stored.body.items.filter((e: { eventId: string }) => e.eventId === accepted.eventId)).toHaveLength(1);
    const staged = await http().get(`/api/v1/devices/mq-cmd/commands/${second.body.id}`).set(operator).expect(200);
    expect(staged.body).toMatchObject({ status: 'staged', lastEvent: { type: 'staged' } });

    // an event about a command this device never got is rejected
    const unknownBefore = await metric('cowroot_mqtt_messages_rejected_total', 'reason="UNKNOWN_COMMAND_ID"');
    await client.publishAsync(events, JSON.stringify({ ...event(JobEventType.Completed), commandId: randomUUID() }), {
      qos: 1,
    });
    expect(await metric('cowroot_mqtt_messages_rejected_total', 'reason="UNKNOWN_COMMAND_ID"')).toBe(unknownBefore + 1);

    const page1 = await http().get('/api/v1/devices/mq-cmd/events').query({ limit: 2 }).set(operator).expect(200);
    const page2 = await http()
      .get('/api/v1/devices/mq-cmd/events')
      .query({ limit: 2, cursor: page1.body.nextCursor })
      .set(operator)
      .expect(200);
    expect([...page1.body.items, ...page2.body.items].map((e: { type: string }) => e.type)).toEqual([
      'progress',
      'staged',
      'accepted',
    ]);
    expect(page2.body.nextCursor).toBeNull();

    const actions = await auditActions('mq-cmd');
    expect(actions).toEqual(
      expect.arrayContaining(['device.command.sent', 'device.command.accepted', 'device.command.staged']),
    );
  });

  it('records a wave of commands in one transaction and publishes them together (rollout path)', async () => {
    const dispatcher = server.app.get(CommandDispatcher);
    const ids = ['mq-wave-0', 'mq-wave-1', 'mq-wave-2'];
    const inboxes = new Map<string, string[]>();
    for (const id of ids) {
      const client = await connect(id, await provision(id));
      await client.subscribeAsync(topic(id, 'commands'), { qos: 1 });
      await eventually(async () => expect((await device(id)).online).toBe(true));
      inboxes.set(id, []);
      client.on('message', (_t, payload) => inboxes.get(id)!.push(JSON.parse(payload.toString()).commandId));
    }
    const actor = { type: 'system' as const, id: 'test', name: 'wave test' };
    const items = ids.flatMap((deviceId) =>
      [0, 1].map(() => ({ deviceId, request: { type: CommandType.Reboot } as CommandRequest })),
    );
    const commands = await server.dataSource.transaction((manager) => dispatcher.recordMany(manager, items, actor));
    expect(commands).toHaveLength(6);
    expect(await dispatcher.publishMany(commands)).toBe(6);
    await eventually(async () => {
      for (const id of ids) expect(inboxes.get(id)).toEqual(commands.filter((c) => c.deviceId === id).map((c) => c.id));
    });
    const statuses = await server.dataSource.query(
      'SELECT status, count(*)::int AS n FROM device_commands WHERE id = ANY($1::uuid[]) GROUP BY 1',
      [commands.map((c) => c.id)],
    );
    expect(statuses).toEqual([{ status: 'sent', n: 6 }]);

    // all or nothing: one decommissioned device fails the whole wave
    await provision('mq-wave-gone');
    await http().post('/api/v1/devices/mq-wave-gone/decommission').set(operator).send({ reason: 'test' }).expect(200);
    const before = await server.dataSource.query('SELECT count(*)::int AS n FROM device_commands');
    await expect(
      server.dataSource.transaction((manager) =>
        dispatcher.recordMany(
          manager,
          [...items, { deviceId: 'mq-wave-gone', request: { type: CommandType.Reboot } }],
          actor,
        ),
      ),
    ).rejects.toThrow(/mq-wave-gone is decommissioned/);
    expect(await server.dataSource.query('SELECT count(*)::int AS n FROM device_commands')).toEqual(before);
  });

  it('with several server instances: takes only its own sessions offline and reaps those of a dead instance', async () => {
    const presence = server.app.get(DevicePresenceService);
    for (const id of ['mq-orphan', 'mq-elsewhere']) await provision(id);
    await server.dataSource.query(
      `INSERT INTO mqtt_brokers (id, heartbeat_at) VALUES ('dead-instance', now() - interval '1 hour'), ('live-instance', now())`,
    );
    await server.dataSource.query(
      `UPDATE devices SET online = true, session_broker = 'dead-instance' WHERE id = 'mq-orphan'`,
    );
    await server.dataSource.query(
      `UPDATE devices SET online = true, session_broker = 'live-instance' WHERE id = 'mq-elsewhere'`,
    );

    // a late disconnect seen here must not take offline a device whose session is now on another instance
    await presence.markOffline('mq-elsewhere', 'disconnected');
    expect((await device('mq-elsewhere')).online).toBe(true);

    expect(await presence.reapOrphans()).toBeGreaterThanOrEqual(1);
    expect((await device('mq-orphan')).online).toBe(false);
    expect((await device('mq-elsewhere')).online).toBe(true);
    const audit = await http()
      .get('/api/v1/audit')
      .query({ subjectId: 'mq-orphan', action: 'device.state.offline' })
      .set(operator);
    expect(audit.body.items[0]).toMatchObject({ actorType: 'system', reason: expect.stringMatching(/stopped/) });
  });

  it('publishes commands that another instance recorded for a device connected here', async () => {
    const dispatcher = server.app.get(CommandDispatcher);
    const client = await connect('mq-remote', await provision('mq-remote'));
    const inbox: string[] = [];
    client.on('message', (_t, payload) => inbox.push(JSON.parse(payload.toString()).commandId));
    await client.subscribeAsync(topic('mq-remote', 'commands'), { qos: 1 });
    await eventually(async () => expect((await device('mq-remote')).online).toBe(true));
    // recorded (as another replica's engine would) but never published by this instance
    const actor = { type: 'system' as const, id: 'replica-b', name: 'other replica' };
    const command = await server.dataSource.transaction((manager) =>
      dispatcher.record(manager, 'mq-remote', { type: CommandType.Reboot }, actor),
    );
    await server.dataSource.query(
      `UPDATE device_commands SET created_at = now() - interval '5 seconds' WHERE id = $1`,
      [command.id],
    );
    expect(await dispatcher.deliverQueued()).toBe(1);
    await eventually(async () => expect(inbox).toEqual([command.id]));
    const stored = await http().get(`/api/v1/devices/mq-remote/commands/${command.id}`).set(operator).expect(200);
    expect(stored.body.status).toBe('sent');
    expect(await dispatcher.deliverQueued()).toBe(0);
  });
});
