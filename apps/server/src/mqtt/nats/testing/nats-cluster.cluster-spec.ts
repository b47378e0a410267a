import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { JobEventMessage } from '@cowroot/protocol';
import { SimulatedDevice } from '../../../../../../tools/fleet-sim/src/simulated-device';
import { tempDir } from '../../../../../../tools/nats/nats-fixture';
import { NatsDeployment, startNatsDeployment } from '../../../../../../tools/nats/nats-deployment';
import { createTestDatabase, TestDatabase } from '../../../../test/test-database';
import { provisionDevices, seedRelease, waitFor } from '../../../rollouts/testing/rollout-fixtures';
import { ReplicaProcess } from './replica-process';
import { startReplicas } from './replica-set';
import { adminApi } from '../../../../test/admin-api';

jest.setTimeout(300_000);

const DEVICES = 12;

/**
 * issue 12's cluster scenario (`npm run test:cluster`): a real 3-node nats-server cluster with JetStream,
 * two server replicas as child processes on one PostgreSQL, simulated devices spread over the nodes. Mid-wave
 * one NATS node and the replica leading the rollout engine are killed with SIGKILL; the devices reconnect to
 * the survivors and the rollout completes with one install command per device, every reported event stored
 * and no execution left in flight.
 */
describe('BROKER=nats cluster: 3 NATS nodes, 2 replicas, kill -9 mid-wave', () => {
  const tmp = tempDir('cowroot-nats-cluster-');
  let nats: NatsDeployment;
  let database: TestDatabase;
  let pool: Pool;
  const replicas: ReplicaProcess[] = [];
  const devices: SimulatedDevice[] = [];
  const reported = new Map<string, JobEventMessage>();
  const adminToken = `cluster-admin-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    nats = await startNatsDeployment(tmp.dir, 3);
    database = await createTestDatabase();
    if (!database.url) throw new Error('the cluster test needs TEST_DATABASE_URL (a PostgreSQL both replicas share)');
    pool = new Pool({ connectionString: database.url, max: 2 });
    await startReplicas(replicas, {
      names: ['replica-a', 'replica-b'],
      natsEnv: nats.serverEnv,
      databaseUrl: database.url,
      dataDir: tmp.dir,
      adminToken,
      credentialKey: randomBytes(32).toString('hex'),
    });
  });

  afterAll(async () => {
    await Promise.all(devices.map((device) => device.stop()));
    await Promise.all(replicas.map((replica) => replica.stop()));
    await pool?.end();
    await nats?.stop();
    await database?.drop();
    tmp.remove();
  });

  const query = async <T>(sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows as T[];
  const liveReplica = () => replicas.find((replica) => replica.alive)!;

  const api = adminApi(() => ({ httpUrl: liveReplica().httpUrl, adminToken }));

  /** The device's broker JWT from whichever replica answers (the agent's failover does the same). */
  const tokenFrom = (deviceId: string, credential: string) => async () => {
    for (let attempt = 0; ; attempt++) {
      const replica = replicas[attempt % replicas.length];
      const response = await fetch(`${replica.httpUrl}/api/v1/devices/${deviceId}/broker-token`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from(`${deviceId}:${credential}`).toString('base64')}` },
      }).catch(() => null);
      if (response?.status === 200) return ((await response.json()) as { token: string }).token;
      if (attempt > 20) throw new Error(`no broker token for ${deviceId}: HTTP ${response?.status}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  it('completes a rollout through a NATS node crash and a replica crash, exactly once per device', async () => {
    const ids = Array.from({ length: DEVICES }, (_, i) => `cl-dev-${String(i).padStart(2, '0')}`);
    const fleet = await provisionDevices(
      { httpUrl: replicas[0].httpUrl, adminToken, mqttPort: -1 },
      ids.map((id) => ({ id, tags: ['cluster-fleet'] })),
      300,
      (id, credential) => {
        const i = ids.indexOf(id) % nats.mqttUrls.length;
        const urls = [...nats.mqttUrls.slice(i), ...nats.mqttUrls.slice(0, i)];
        return {
          mqttUrl: urls[0],
          failoverMqttUrls: urls.slice(1),
          mqttPassword: tokenFrom(id, credential),
          reconnect: true,
        };
      },
    );
    for (const device of fleet) {
      const onEvent = (_id: string, event: JobEventMessage) => reported.set(event.eventId, event);
      (device as unknown as { hooks: { onEvent: typeof onEvent } }).hooks = { onEvent };
    }
    devices.push(...fleet);
    // a fresh cluster closes the first MQTT connects while it creates the account's $MQTT_ streams
    await Promise.all(fleet.map((device) => device.connectRetrying()));
    await waitFor(
      async () =>
        (
          await query<{ n: number }>(
            `SELECT count(*)::int AS n FROM devices WHERE id = ANY($1) AND booted_snapshot IS NOT NULL AND online`,
            [ids],
          )
        )[0].n === DEVICES,
      30_000,
      'every device reported and online',
    );

    await seedRelease({ query } as unknown as DataSource, { name: 'cluster-os', version: '2' });
    const rollout = await api('POST', '/rollouts', {
      name: 'cluster rollout',
      release: { name: 'cluster-os', version: '2' },
      selector: { tags: ['cluster-fleet'] },
      waves: [
        { count: 2, successPercent: 100, timeoutSeconds: 120 },
        { percent: 50, successPercent: 100, timeoutSeconds: 120 },
        { percent: 100, successPercent: 100, timeoutSeconds: 120 },
      ],
    });

    // mid-wave: the second wave has dispatched, not finished
    await waitFor(
      async () => {
        const current = await api('GET', `/rollouts/${rollout.id}`);
        return current.waves[1].status === 'running';
      },
      60_000,
      'second wave running',
    );
    const [leader] = await query<{ application_name: string }>(
      `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'replica-%'`,
    );
    const victimReplica = replicas.find((replica) => replica.name === leader?.application_name) ?? replicas[0];
    const victimNode = nats.nodes[1];
    await Promise.all([victimNode.stop('SIGKILL'), victimReplica.stop('SIGKILL')]);
    const killedAt = Date.now();

    const done = await waitFor(
      async () => {
        const current = await api('GET', `/rollouts/${rollout.id}`).catch(() => null);
        return current && ['completed', 'aborted', 'failed'].includes(current.status) ? current : null;
      },
      180_000,
      'rollout finished',
    ).catch(async (error: Error) => {
      const states = await query(
        `SELECT e.device_id, e.state, e.wave_index, c.status AS command FROM rollout_executions e
           LEFT JOIN device_commands c ON c.id = e.command_id WHERE e.rollout_id = $1 ORDER BY e.device_id`,
        [rollout.id],
      );
      const survivor = liveReplica();
      throw new Error(
        `${error.message}\nexecutions: ${JSON.stringify(states)}\ndevices connected: ${fleet.map((d) => d.connected)}\n` +
          `${survivor.name} log tail:\n${survivor.output.slice(-3000)}`,
      );
    });
    const recovery = Date.now() - killedAt;
    expect(done.status).toBe('completed');
    expect(done.counts).toEqual({ confirmed: DEVICES });

    // exactly one install command per device: recorded once, and one command id received by each device
    const installs = await query<{ device_id: string; n: number }>(
      `SELECT device_id, count(*)::int AS n FROM device_commands WHERE type = 'install' AND device_id = ANY($1)
        GROUP BY device_id ORDER BY device_id`,
      [ids],
    );
    expect(installs).toEqual(ids.map((id) => ({ device_id: id, n: 1 })));
    expect(fleet.map((device) => device.installCommandIds.size)).toEqual(ids.map(() => 1));
    // no report lost: every event a device reported reaches the database, once; those the killed replica
    // held unacknowledged come back after the consumer's ack_wait (30 s)
    const missing = async () => {
      const stored = await query<{ event_id: string }>(
        `SELECT event_id FROM device_job_events WHERE device_id = ANY($1)`,
        [ids],
      );
      const storedIds = new Set(stored.map((row) => row.event_id));
      expect(storedIds.size).toBe(stored.length);
      return [...reported.values()].filter((event) => !storedIds.has(event.eventId));
    };
    const lateEvents = (await missing()).length;
    await waitFor(async () => (await missing()).length === 0, 60_000, 'every reported event stored').catch(
      async (error: Error) => {
        const lost = (await missing()).map((event) => `${event.commandId}:${event.type}`);
        throw new Error(`${error.message}: ${lost.length} event(s) lost: ${lost.join(', ')}`);
      },
    );
    const allStoredAfter = Date.now() - killedAt;
    // nothing stuck in flight
    const open = await query<{ n: number }>(
      `SELECT count(*)::int AS n FROM rollout_executions WHERE rollout_id = $1 AND state <> 'confirmed'`,
      [rollout.id],
    );
    expect(open[0].n).toBe(0);
    console.log(
      JSON.stringify({
        point: 'cluster-kill',
        killedNode: victimNode.options.name,
        killedReplica: victimReplica.name,
        recoveryMs: recovery,
        lateEvents,
        allStoredAfterMs: allStoredAfter,
        events: reported.size,
      }),
    );
  });
});
