import { JobEventType, MessageRejectedMessage, RejectionReason, parseMessageRejected } from '@cowroot/protocol';
import { MqttClient, connectAsync } from 'mqtt';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { MqttFleet, deviceTopicOf, publishAcked, stateReport } from '../../test/mqtt-fleet';
import { eventually } from '../../test/eventually';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { AuditCoalescer } from '../audit/audit-coalescer.service';
import { MAX_DEVICE_AUDIT_VALUE_CHARS } from '../audit/audit-entry-bounds';
import { DevicePresenceService } from '../devices/device-presence.service';

const closeOf = (client: MqttClient) => new Promise<void>((resolve) => client.once('close', () => resolve()));

describe('ingest hardening: rejections, takeovers, audit bounds, MQTT version (issue 9)', () => {
  let server: TestServer;
  let fleet: MqttFleet;

  beforeAll(async () => {
    server = await startTestServer();
    fleet = new MqttFleet(server);
  });

  afterEach(async () => {
    await fleet.closeAll();
  });

  afterAll(async () => {
    await server?.close();
  });

  const rejected = async (reason: RejectionReason) =>
    (await fleet.metricValues('cowroot_mqtt_messages_rejected_total')).get(`{reason="${reason}"}`) ?? NaN;

  async function audit(subjectId: string, action: string) {
    const res = await request(server.httpUrl)
      .get('/api/v1/audit')
      .query({ subjectType: 'device', subjectId, action, limit: 200 })
      .set(await fleet.operatorHeaders())
      .expect(200);
    return res.body.items as Array<{ action: string; after: unknown; reason: string | null }>;
  }

  /** A device subscribed to its rejections topic, collecting the notices. */
  async function listening(id: string): Promise<{ client: MqttClient; notices: MessageRejectedMessage[] }> {
    const client = await fleet.connect(id, await fleet.provision(id));
    const notices: MessageRejectedMessage[] = [];
    client.on('message', (_topic, payload) => {
      const parsed = parseMessageRejected(payload);
      if (!parsed.ok) throw new Error(`notice does not parse: ${parsed.message}`);
      notices.push(parsed.value);
    });
    expect(await client.subscribeAsync(deviceTopicOf(id, 'rejections'), { qos: 1 })).toEqual([
      expect.objectContaining({ qos: 1 }),
    ]);
    return { client, notices };
  }

  it('acknowledges a message it can never store, counts it, and tells the device on its rejections topic', async () => {
    const { client, notices } = await listening('rj-1');
    const malformedBefore = await rejected(RejectionReason.MalformedMessage);
    expect(malformedBefore).toBeGreaterThanOrEqual(0);
    // what a health check printing a NUL byte used to produce: resent forever, the connection closed each time
    const poisoned = JSON.stringify(
      stateReport(5, {
        lastTrialResult: { snapshot: 'base-1.0', outcome: 'health-rejected', check: 'app', outputTail: 'x\u0000y' },
      }),
    );
    await publishAcked(client, deviceTopicOf('rj-1', 'state'), poisoned);
    await publishAcked(client, deviceTopicOf('rj-1', 'state'), `{"v":1,"a":${'['.repeat(5000)}${']'.repeat(5000)}}`);
    const commandId = randomUUID();
    const eventId = randomUUID();
    const orphan = { v: 1, commandId, eventId, type: JobEventType.Completed, at: new Date().toISOString() };
    await publishAcked(client, deviceTopicOf('rj-1', 'events'), JSON.stringify(orphan));
    await eventually(() => expect(notices).toHaveLength(3));
    expect(notices[0]).toMatchObject({
      v: 1,
      reason: RejectionReason.MalformedMessage,
      channel: 'state',
      seq: 5,
      message: expect.stringContaining('lastTrialResult.outputTail'),
    });
    expect(notices[1]).toMatchObject({ reason: RejectionReason.MalformedMessage, message: /nested deeper than 16/ });
    expect(notices[2]).toMatchObject({
      reason: RejectionReason.UnknownCommandId,
      channel: 'events',
      commandId,
      eventId,
    });
    expect(await rejected(RejectionReason.MalformedMessage)).toBe(malformedBefore + 2);
    expect(client.connected).toBe(true);
    // the device is still served on the same connection
    await publishAcked(client, deviceTopicOf('rj-1', 'state'), JSON.stringify(stateReport(6)));
    const rows = await server.dataSource.query(`SELECT state_seq FROM devices WHERE id = 'rj-1'`);
    expect(rows[0].state_seq).toBe(6);
  });

  it('sends a flooding device a few notices per second, with the count it held back', async () => {
    const { client, notices } = await listening('rj-flood');
    await Promise.all(
      Array.from({ length: 40 }, () => publishAcked(client, deviceTopicOf('rj-flood', 'state'), '{not json')),
    );
    await sleep(1100);
    await publishAcked(client, deviceTopicOf('rj-flood', 'state'), '{not json');
    await eventually(() => expect(notices.length).toBe(6));
    expect(notices[5].suppressed).toBe(35);
  });

  it('counts and warns about session takeovers, and audits them once per window', async () => {
    const credential = await fleet.provision('tk-1');
    const before = (await fleet.metricValues('cowroot_mqtt_session_takeovers_total')).get('') ?? 0;
    let previous = await fleet.connect('tk-1', credential);
    for (let i = 0; i < 5; i++) {
      const kicked = closeOf(previous);
      previous = await fleet.connect('tk-1', credential);
      await kicked;
    }
    await eventually(async () =>
      expect((await fleet.metricValues('cowroot_mqtt_session_takeovers_total')).get('')).toBe(before + 5),
    );
    await server.app.get(DevicePresenceService).drain();
    expect(await audit('tk-1', 'device.session.takeover')).toHaveLength(1);
    await server.app.get(AuditCoalescer).flush(Infinity);
    const repeated = await audit('tk-1', 'device.session.takeover.repeated');
    expect(repeated).toEqual([expect.objectContaining({ after: expect.objectContaining({ count: 4 }) })]);
  });

  it('coalesces presence flaps in the audit log and keeps the device row true', async () => {
    const credential = await fleet.provision('flap-1');
    for (let i = 0; i < 10; i++) {
      const client = await fleet.connect('flap-1', credential);
      await eventually(async () => {
        const [row] = await server.dataSource.query(`SELECT online FROM devices WHERE id = 'flap-1'`);
        expect(row.online).toBe(true);
      });
      await client.endAsync();
      await eventually(async () => {
        const [row] = await server.dataSource.query(`SELECT online FROM devices WHERE id = 'flap-1'`);
        expect(row.online).toBe(false);
      });
    }
    expect(await audit('flap-1', 'device.state.online')).toHaveLength(3);
    expect(await audit('flap-1', 'device.state.offline')).toHaveLength(3);
    await server.app.get(AuditCoalescer).flush(Infinity);
    const online = await audit('flap-1', 'device.state.online.repeated');
    const offline = await audit('flap-1', 'device.state.offline.repeated');
    expect(online).toEqual([
      expect.objectContaining({ after: expect.objectContaining({ count: 7, last: { online: true } }) }),
    ]);
    expect(offline).toEqual([
      expect.objectContaining({ after: expect.objectContaining({ count: 7, last: { online: false } }) }),
    ]);
  });

  it('coalesces a state transition a device repeats (health flapping with every report)', async () => {
    const { client } = await listening('flap-health');
    for (let seq = 1; seq <= 12; seq++) {
      const passed = seq % 2 === 0;
      const health = {
        status: passed ? 'passed' : 'failed',
        checkedAt: new Date().toISOString(),
        checks: [{ name: 'app', kind: 'required', passed, durationMs: 3 }],
      };
      await publishAcked(client, deviceTopicOf('flap-health', 'state'), JSON.stringify(stateReport(seq, { health })));
    }
    const [row] = await server.dataSource.query(`SELECT health->>'status' AS status FROM devices WHERE id = $1`, [
      'flap-health',
    ]);
    expect(row.status).toBe('passed');
    expect(await audit('flap-health', 'device.state.health-changed')).toHaveLength(3);
    await server.app.get(AuditCoalescer).flush(Infinity);
    expect(await audit('flap-health', 'device.state.health-changed.repeated')).toEqual([
      expect.objectContaining({
        after: expect.objectContaining({ count: 9, last: { status: 'passed', failed: [] } }),
      }),
    ]);
  });

  it('keeps what a device sends in an audit row bounded', async () => {
    const { client } = await listening('big-1');
    const checks = Array.from({ length: 256 }, (_, i) => ({
      name: `check-${i}-${'n'.repeat(110)}`,
      kind: 'required',
      passed: false,
      durationMs: 1,
      outputTail: 'o'.repeat(100),
    }));
    const health = { status: 'failed', checkedAt: new Date().toISOString(), checks };
    await publishAcked(client, deviceTopicOf('big-1', 'state'), JSON.stringify(stateReport(1, { health })));
    const [entry] = await audit('big-1', 'device.state.health-changed');
    expect(entry.after).toMatchObject({ truncated: true, chars: expect.any(Number) });
    const [sizes] = await server.dataSource.query(
      `SELECT max(length(coalesce(before::text, ''))) AS before, max(length(coalesce(after::text, ''))) AS after,
              max(length(coalesce(reason, ''))) AS reason
         FROM audit_log WHERE actor_type = 'device'`,
    );
    expect(sizes.before).toBeLessThanOrEqual(MAX_DEVICE_AUDIT_VALUE_CHARS + 100);
    expect(sizes.after).toBeLessThanOrEqual(MAX_DEVICE_AUDIT_VALUE_CHARS + 100);
    expect(sizes.reason).toBeLessThanOrEqual(1024);
  });

  it('refuses MQTT 5 with a clear CONNACK (aedes 1.x speaks MQTT 3.1.1), and serves 3.1.1', async () => {
    const credential = await fleet.provision('v5-1');
    const connect = (protocolVersion: 4 | 5) =>
      connectAsync(`mqtt://127.0.0.1:${server.mqttPort}`, {
        clientId: 'v5-1',
        username: 'v5-1',
        password: credential,
        protocolVersion,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
    // CONNACK return code 1, unacceptable protocol version (MQTT 3.1.1 §3.2.2.3)
    await expect(connect(5)).rejects.toMatchObject({ code: 1 });
    const v311 = await connect(4);
    expect(v311.connected).toBe(true);
    await v311.endAsync();
  });

  it('answers mosquitto_pub the same way: -V mqttv5 refused, -V mqttv311 served (docs/protocol.md §2)', async () => {
    const credential = await fleet.provision('v5-mosq');
    const pub = (version: string) =>
      new Promise<{ code: number | string; output: string }>((resolve) => {
        const args = ['-h', '127.0.0.1', '-p', String(server.mqttPort), '-V', version, '-i', 'v5-mosq'];
        args.push('-u', 'v5-mosq', '-P', credential, '-q', '1', '-t', deviceTopicOf('v5-mosq', 'presence'));
        args.push('-m', JSON.stringify({ v: 1, status: 'online' }));
        execFile('mosquitto_pub', args, { timeout: 10_000 }, (error, stdout, stderr) =>
          resolve({
            code: error ? ((error as { code?: number | string }).code ?? -1) : 0,
            output: `${stdout}${stderr}`,
          }),
        );
      });
    const v5 = await pub('mqttv5');
    if (v5.code === 'ENOENT') {
      process.stdout.write('skipped: mosquitto_pub is not installed (apt-get install mosquitto-clients)\n');
      return;
    }
    process.stdout.write(`mosquitto_pub -V mqttv5: exit ${v5.code}: ${v5.output.trim()}\n`);
    expect(v5).toEqual({ code: 132, output: expect.stringContaining('Unsupported Protocol Version') });
    expect(await pub('mqttv311')).toEqual({ code: 0, output: '' });
  });
});
