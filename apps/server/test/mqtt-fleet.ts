import { PROTOCOL_VERSION } from '@cowroot/protocol';
import { IClientOptions, MqttClient, connectAsync } from 'mqtt';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { TestServer } from './start-test-server';

export const SNAPSHOT_UUID = '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';

export const deviceTopicOf = (deviceId: string, channel: string) => `cowroot/v1/devices/${deviceId}/${channel}`;

/** A schema-valid state report (docs/protocol.md §5.1). */
export function stateReport(seq: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: PROTOCOL_VERSION,
    seq,
    sentAt: new Date(Date.UTC(2026, 10, 25, 10, 0, 0) + seq * 1000).toISOString(),
    agentVersion: '0.1.0',
    bootedSnapshot: 'base-1.0',
    trialBoot: false,
    fallbackSnapshot: 'base-1.0',
    pendingTrial: null,
    lastTrialResult: null,
    snapshots: [
      {
        id: 'base-1.0',
        uuid: SNAPSHOT_UUID,
        receivedUuid: SNAPSHOT_UUID,
        parentUuid: null,
        readOnly: true,
        origin: 'received',
        release: { name: 'base', version: '1.0' },
        createdAt: '2026-11-25T09:00:00Z',
      },
    ],
    health: null,
    freeBytes: 123456789,
    ...overrides,
  };
}

/** A QoS 1 publish that settles: mqtt.js never settles one whose connection closed without reconnecting. */
export function publishAcked(
  client: MqttClient,
  topic: string,
  payload: string | Buffer,
  timeoutMs = 5000,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no PUBACK within ${timeoutMs} ms`)), timeoutMs);
    const onClose = () => {
      clearTimeout(timer);
      reject(new Error('connection closed before PUBACK'));
    };
    client.once('close', onClose);
    client.publish(topic, payload, { qos: 1 }, (error) => {
      clearTimeout(timer);
      client.removeListener('close', onClose);
      if (error) reject(error);
      else resolve();
    });
  });
}

/** Provisioning, connecting and metrics against a test server, for tests that drive many devices. */
export class MqttFleet {
  readonly clients: MqttClient[] = [];
  private operator: { Authorization: string } | null = null;

  constructor(private readonly server: TestServer) {}

  async operatorHeaders(): Promise<{ Authorization: string }> {
    if (this.operator) return this.operator;
    const token = await request(this.server.httpUrl)
      .post('/api/v1/tokens')
      .set({ Authorization: `Bearer ${this.server.adminToken}` })
      .send({ name: 'fleet-test', role: 'operator' })
      .expect(201);
    this.operator = { Authorization: `Bearer ${token.body.token}` };
    return this.operator;
  }

  async provision(id: string): Promise<string> {
    const res = await request(this.server.httpUrl)
      .post('/api/v1/devices')
      .set(await this.operatorHeaders())
      .send({ id })
      .expect(201);
    return res.body.credential;
  }

  async connect(id: string, password: string, options: IClientOptions = {}): Promise<MqttClient> {
    const client = await connectAsync(`mqtt://127.0.0.1:${this.server.mqttPort}`, {
      clientId: id,
      username: id,
      password,
      reconnectPeriod: 0,
      connectTimeout: 10000,
      ...options,
    });
    // a connection the server cuts surfaces as an error event; tests count 'close' instead
    client.on('error', () => undefined);
    // publishAcked listens for 'close' once per publish in flight
    client.setMaxListeners(0);
    this.clients.push(client);
    return client;
  }

  /** `name{labels} value` lines of /metrics for one metric, as label text → value. */
  async metricValues(name: string): Promise<Map<string, number>> {
    const text = (await request(this.server.httpUrl).get('/metrics').expect(200)).text;
    const values = new Map<string, number>();
    for (const line of text.split('\n')) {
      const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (match && match[1] === name) values.set(match[2] ?? '', Number(match[3]));
    }
    return values;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((client) => client.endAsync(true).catch(() => undefined)));
  }
}

/**
 * An honest device: publishes state reports with rising seq, one at a time (QoS 1, waits for PUBACK), until
 * stopped. Counts the reports acknowledged and the times its connection closed under it.
 */
export class HonestReporter {
  acked = 0;
  lastAckedSeq = -1;
  /** job events acknowledged, when the reporter was given a command to report progress on */
  eventsAcked = 0;
  closes = 0;
  failures = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;

  constructor(
    readonly deviceId: string,
    private readonly client: MqttClient,
    private readonly pauseMs = 20,
    /** when set, every state report is followed by a progress event for this command */
    private readonly commandId?: string,
  ) {
    client.on('close', () => {
      if (!this.stopped) this.closes++;
    });
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    let seq = 0;
    while (!this.stopped && this.client.connected) {
      try {
        await publishAcked(this.client, deviceTopicOf(this.deviceId, 'state'), JSON.stringify(stateReport(seq)));
        this.acked++;
        this.lastAckedSeq = seq;
        if (this.commandId) {
          const event = {
            v: PROTOCOL_VERSION,
            commandId: this.commandId,
            eventId: randomUUID(),
            type: 'progress',
            at: new Date().toISOString(),
            progress: { phase: 'download', bytesDone: seq },
          };
          await publishAcked(this.client, deviceTopicOf(this.deviceId, 'events'), JSON.stringify(event));
          this.eventsAcked++;
        }
      } catch {
        this.failures++;
        return;
      }
      seq++;
      await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
    }
  }
}
