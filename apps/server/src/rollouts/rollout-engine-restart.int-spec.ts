import { describePrivileged, requirePostgres } from '@cowroot/testing';
import { startTestServer, TestServer } from '../../test/start-test-server';

import { SimulatedDevice } from '../../../../tools/fleet-sim/src/simulated-device';
import { EngineLeadership } from './engine-leadership.service';
import { provisionDevices, seedRelease, waitFor } from './testing/rollout-fixtures';
import { adminApi } from '../../test/admin-api';

jest.setTimeout(120_000);

const api = (server: TestServer, method: string, path: string, body?: unknown) => adminApi(server)(method, path, body);

describe('rollout engine across a restart', () => {
  let first: TestServer | null = null;
  let second: TestServer | null = null;
  let devices: SimulatedDevice[] = [];

  afterEach(async () => {
    await Promise.all(devices.map((device) => device.stop()));
    // the last server standing cleans the shared database up
    await first?.close({ keepData: second !== null }).catch(() => undefined);
    await second?.close();
    first = second = null;
  });

  it('resumes a rollout after the server restarts, without lost or duplicated dispatch', async () => {
    first = await startTestServer();
    const server = first;
    await seedRelease(server.dataSource, { name: 'restart-os', version: '2' });
    // long reboots: the first wave is mid-reboot when the server goes away
    devices = await provisionDevices(
      server,
      Array.from({ length: 6 }, (_, i) => ({ id: `rs-${i}`, tags: ['restart'] })),
      3000,
    );
    await Promise.all(devices.map((device) => device.connect()));
    await waitFor(
      async () =>
        (
          (await server.dataSource.query(
            `SELECT count(*)::int AS n FROM devices WHERE booted_snapshot IS NOT NULL`,
          )) as { n: number }[]
        )[0].n === 6,
      10_000,
      'state reports',
    );
    const created = await api(server, 'POST', '/rollouts', {
      name: 'restart',
      release: { name: 'restart-os', version: '2' },
      selector: { tags: ['restart'] },
      waves: [
        { count: 2, timeoutSeconds: 40, soakSeconds: 1 },
        { percent: 100, timeoutSeconds: 40 },
      ],
    });
    await waitFor(
      async () => (await api(server, 'GET', `/rollouts/${created.id}`)).counts.rebooting === 2,
      20_000,
      'canaries rebooting',
    );
    const mqttPort = server.mqttPort;
    await server.close({ keepData: true });
    first = null;

    second = await startTestServer({ reuse: server, env: { MQTT_PORT: String(mqttPort) } });
    const restarted = second;
    // devices that were not rebooting lost their connection with the old broker: the agent reconnects
    const inWave0 = (
      (await restarted.dataSource.query(`SELECT device_id FROM rollout_executions WHERE wave_index = 0`)) as {
        device_id: string;
      }[]
    ).map((row) => row.device_id);
    await Promise.all(devices.filter((device) => !inWave0.includes(device.id)).map((device) => device.connect()));

    const done = await waitFor(
      async () => {
        const rollout = await api(restarted, 'GET', `/rollouts/${created.id}`);
        return rollout.status === 'completed' ? rollout : null;
      },
      60_000,
      'rollout completed after restart',
    );
    expect(done.counts).toEqual({ confirmed: 6 });
    const commands = (await restarted.dataSource.query(
      `SELECT device_id, count(*)::int AS n FROM device_commands GROUP BY device_id ORDER BY device_id`,
    )) as { device_id: string; n: number }[];
    expect(commands).toEqual(devices.map((device) => ({ device_id: device.id, n: 1 })));
    const notified = (await restarted.dataSource.query(
      `SELECT count(*)::int AS n FROM rollout_execution_history WHERE to_state = 'notified'`,
    )) as { n: number }[];
    expect(notified[0].n).toBe(6);
  });
});

// two replicas need one database both can reach: PostgreSQL, not an embedded PGlite per server
describePrivileged('rollout engine on two replicas', [requirePostgres], () => {
  let first: TestServer | null = null;
  let second: TestServer | null = null;

  afterEach(async () => {
    await first?.close({ keepData: second !== null }).catch(() => undefined);
    await second?.close();
    first = second = null;
  });

  it('runs the engine on exactly one of two replicas and fails over when the leader stops', async () => {
    first = await startTestServer();
    const a = first.app.get(EngineLeadership);
    await waitFor(async () => a.isLeader, 10_000, 'first instance leads');
    second = await startTestServer({ reuse: first });
    const b = second.app.get(EngineLeadership);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    await first.close({ keepData: true });
    first = null;
    await waitFor(async () => b.isLeader, 10_000, 'second instance takes over');
  });
});
