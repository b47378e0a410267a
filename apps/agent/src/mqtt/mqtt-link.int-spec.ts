import { startTestServer, TestServer } from '../../../server/test/start-test-server';
import { AgentLogger } from '../logger';
import { MqttLink } from './mqtt-link';

jest.setTimeout(60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Two agents with the same client id against the fleet server's embedded broker: each CONNECT takes the
 * session over and closes the other connection (MQTT-3.1.4-2). The backoff must keep growing instead of
 * being reset by every CONNACK, or the two kick each other off forever at the initial delay.
 */
describe(MqttLink.name, () => {
  let server: TestServer;
  let deviceId: string;
  let credential: string;
  const links: MqttLink[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    deviceId = 'link-twin-1';
    const response = await fetch(`${server.httpUrl}/api/v1/devices`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: deviceId }),
    });
    expect(response.status).toBe(201);
    credential = ((await response.json()) as { credential: string }).credential;
  });

  afterEach(async () => {
    await Promise.all(links.splice(0).map((link) => link.stop(false)));
  });

  afterAll(async () => {
    await server?.close();
  });

  function twin(name: string, connects: string[]): MqttLink {
    const link = new MqttLink(
      {
        deviceId,
        credential,
        url: `mqtt://127.0.0.1:${server.mqttPort}`,
        ca: null,
        initialReconnectMs: 100,
        maxReconnectMs: 1600,
        stableAfterMs: 4000,
      },
      new AgentLogger(deviceId, () => undefined),
    );
    link.on('connect', () => connects.push(name));
    links.push(link);
    return link;
  }

  it('keeps backing off while two links with one client id take the session from each other', async () => {
    const connects: string[] = [];
    const a = twin('a', connects);
    const b = twin('b', connects);
    a.start();
    await sleep(300);
    b.start();
    await sleep(8000);
    // a reset on every CONNACK reconnects each link every 100-200 ms: 80 and more connects in 8 s;
    // doubling to 1.6 s without a reset allows about 100+200+400+800+1600+1600+1600+1600 ≈ 8 s: 10 per link
    expect(connects.length).toBeGreaterThan(4);
    expect(connects.length).toBeLessThanOrEqual(24);
    expect(new Set(connects)).toEqual(new Set(['a', 'b']));
    expect(Math.max(a.reconnectDelayMs, b.reconnectDelayMs)).toBe(1600);
  });

  it('starts the backoff over once a connection has been stable', async () => {
    const connects: string[] = [];
    const a = twin('a', connects);
    const b = twin('b', connects);
    a.start();
    await sleep(300);
    b.start();
    await sleep(3000);
    const grown = a.reconnectDelayMs;
    expect(grown).toBeGreaterThan(100);
    // the twin goes away: the remaining link takes the session back and keeps it
    await b.stop(false);
    links.splice(links.indexOf(b), 1);
    await sleep(2500);
    expect(a.connected).toBe(true);
    // connected for less than stableAfterMs: still backing off
    expect(a.reconnectDelayMs).toBeGreaterThanOrEqual(grown);
    await sleep(4500);
    expect(a.connected).toBe(true);
    expect(a.reconnectDelayMs).toBe(100);
  });
});
