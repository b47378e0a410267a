import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'pg';
import { describePrivileged, requireCommand, requireLoopDevices, requirePostgres, requireRoot } from '@cowroot/testing';
import { AgentRig, Artifact } from '../../../../../agent/src/testing/agent-rig';
import { tempDir } from '../../../../../../tools/nats/nats-fixture';
import { NatsDeployment, startNatsDeployment } from '../../../../../../tools/nats/nats-deployment';
import { NATS_SERVER_BINARY } from '../../../../../../tools/nats/nats-server-process';
import { createTestDatabase, TestDatabase } from '../../../../test/test-database';
import { ReplicaProcess } from './replica-process';
import { startReplicas } from './replica-set';
import { adminApi } from '../../../../test/admin-api';

jest.setTimeout(300_000);

const DEVICE_ID = 'agent-cluster-1';

/**
 * issue 12 with the REAL agent (apps/agent, in process, on a btrfs loop pool through its test rig) instead of
 * the simulator: `server.mqttAuth: "token"` and `failoverMqttUrls` over a 3-node NATS cluster, two server
 * replicas. Mid-job the node the agent is connected to is frozen (SIGSTOP: what the agent publishes now is
 * neither stored nor acknowledged) until the agent's journal holds an unacknowledged report, then killed
 * with SIGKILL. The agent must reconnect to a survivor with a fresh broker token, re-send what was not
 * acknowledged, the server must store each report exactly once, and the job must complete.
 */
describePrivileged(
  'the real agent on a NATS cluster: kill -9 of its node mid-job',
  [
    requireRoot,
    requireLoopDevices,
    requirePostgres,
    requireCommand('btrfs'),
    requireCommand('fw_setenv'),
    requireCommand('mkenvimage'),
    requireCommand('zstd'),
    requireCommand(NATS_SERVER_BINARY),
  ],
  () => {
    const tmp = tempDir('cowroot-agent-cluster-');
    const rig = new AgentRig();
    const adminToken = `agent-cluster-${randomBytes(8).toString('hex')}`;
    const replicas: ReplicaProcess[] = [];
    let nats: NatsDeployment;
    let database: TestDatabase;
    let pool: Pool;
    let full2: Artifact;

    const query = async <T>(sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows as T[];

    const api = adminApi(() => ({ httpUrl: replicas[0].httpUrl, adminToken }));

    /** Which nodes hold an MQTT connection of the device right now (connz of each live node). */
    async function nodesOfDevice(): Promise<string[]> {
      const names: string[] = [];
      for (const node of nats.nodes) {
        const connz = await node
          .monitor<{ connections?: Array<{ mqtt_client?: string }> }>('connz?limit=4096')
          .catch(() => null);
        if (connz?.connections?.some((c) => c.mqtt_client === DEVICE_ID)) names.push(node.options.name);
      }
      return names;
    }

    const outbox = async (): Promise<Array<{ eventId: string; type: string }>> => {
      const text = await readFile(join(rig.pool, 'state', 'agent', 'journal.json'), 'utf8').catch(() => '{}');
      return ((JSON.parse(text) as { outbox?: Array<{ eventId: string; type: string }> }).outbox ?? []).slice();
    };

    beforeAll(async () => {
      nats = await startNatsDeployment(tmp.dir, 3);
      database = await createTestDatabase();
      if (!database.url) throw new Error('needs TEST_DATABASE_URL (a PostgreSQL both replicas share)');
      pool = new Pool({ connectionString: database.url, max: 2 });
      // behind one address, as behind a load balancer: the artifact URLs both replicas put in commands point
      // at replica-a, which holds the uploaded artifact and is the agent's server.httpUrl
      await startReplicas(replicas, {
        names: ['replica-a', 'replica-b'],
        natsEnv: nats.serverEnv,
        databaseUrl: database.url,
        dataDir: tmp.dir,
        adminToken,
        credentialKey: randomBytes(32).toString('hex'),
        publicUrl: 'first',
      });
      const provisioned = await api('POST', '/devices', { id: DEVICE_ID, tags: ['agent-cluster'] });
      const [first, ...others] = nats.mqttUrls;
      await rig.setUp({
        server: {
          mqttUrl: first,
          httpUrl: replicas[0].httpUrl,
          deviceId: DEVICE_ID,
          credential: provisioned.credential,
        },
      });
      rig.configOverrides = {
        server: { mqttUrl: first, httpUrl: replicas[0].httpUrl, mqttAuth: 'token', failoverMqttUrls: others },
      };
      await api('POST', '/signing-keys', {
        name: 'agent-cluster',
        publicKeyPem: rig.releaseKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      });
      const r1 = await rig.builder.build('r1', { 'boot/uImage': 'k1\n', 'etc/os-release': 'VERSION=1\n' });
      // tens of MiB, so that the node is frozen (at the stored `accepted`) while the agent still downloads
      const r2 = await rig.builder.build(
        'r2',
        { 'boot/uImage': 'k2\n', 'etc/os-release': 'VERSION=2\n', 'usr/lib/blob': randomBytes(32 * 1024 * 1024) },
        r1,
      );
      await rig.provision(r1, 'r1');
      // the trial boot starts on the killed node's URL and must find a survivor, whose MQTT session store may
      // still be electing a leader (docs/scale-out.md, "Reconnect after losing a stream leader"): the rig's
      // 10 s would judge the cluster's failover time, not the device; the agent's default is 120 s
      rig.configOverrides.health = { ...(rig.configFor().health as object), mqttConfirmTimeoutMs: 60_000 };
      full2 = await rig.artifact(r2);
      await api('POST', '/releases', { name: 'base', version: 'r2' });
      const file = full2.file.split('/').pop()!;
      const upload = await fetch(`${replicas[0].httpUrl}/api/v1/releases/base/r2/artifacts/${file}`, {
        method: 'PUT',
        headers: {
          Authorization: `Bearer ${adminToken}`,
          'Content-Type': 'application/octet-stream',
          'X-Cowroot-Manifest': full2.manifest.toString('base64'),
          'X-Cowroot-Signature': full2.signature,
        },
        body: await readFile(full2.file),
      });
      if (upload.status !== 201) throw new Error(`upload: HTTP ${upload.status} ${await upload.text()}`);
      // a fresh cluster refuses the first MQTT connects while it places the $MQTT_ streams: the agent retries
      await rig.startAgent();
    });

    afterAll(async () => {
      await rig.tearDown();
      await Promise.all(replicas.map((replica) => replica.stop()));
      await pool?.end();
      await nats?.stop();
      await database?.drop();
      tmp.remove();
    });

    it('reconnects to a survivor, re-sends its unacknowledged reports, each stored once, and the job completes', async () => {
      await rig.waitFor(
        'the agent online with its state',
        async () => {
          const device = await api('GET', `/devices/${DEVICE_ID}`).catch(() => null);
          return device?.online && device.bootedSnapshot === 'r1';
        },
        90_000,
      );
      // the agent starts on its mqttUrl, the first node
      expect(await nodesOfDevice()).toEqual(['n1']);
      const rollout = await api('POST', '/rollouts', {
        name: 'agent on the cluster',
        release: { name: 'base', version: 'r2' },
        selector: { deviceIds: [DEVICE_ID] },
        waves: [{ count: 1, successPercent: 100, timeoutSeconds: 240 }],
      });
      const [victim] = nats.nodes;
      // mid-job: the install command accepted (stored by the server), the rest of the job still to come
      await rig.waitFor(
        'the install accepted',
        async () =>
          (
            await query<{ n: number }>(
              `SELECT count(*)::int AS n FROM device_job_events WHERE device_id = $1 AND type = 'accepted'`,
              [DEVICE_ID],
            )
          )[0].n > 0,
        60_000,
      );
      victim.freeze();
      const held = await rig.waitFor(
        'a report held unacknowledged by the frozen node',
        async () => {
          const events = await outbox();
          return events.some((e) => e.type === 'staged') ? events : null;
        },
        // a state report waits at most 5 s for a PUBACK the frozen node never sends; before, the job stalled
        // until the keepalive gave up on the connection (45 s) and staged on the next node
        25_000,
      );
      await victim.stop('SIGKILL');
      const killedAt = Date.now();

      // the agent reconnects to a survivor (a fresh broker token, the next URL) ...
      const survivor = await rig.waitFor(
        'the agent connected to a survivor',
        async () => {
          const on = await nodesOfDevice();
          return on.length === 1 && on[0] !== victim.options.name ? on[0] : null;
        },
        60_000,
      );
      // ... and re-sends what the killed node never acknowledged: the server gets it from there
      await rig.waitFor(
        'the unacknowledged reports stored',
        async () => {
          const rows = await query<{ event_id: string }>(
            `SELECT event_id FROM device_job_events WHERE event_id = ANY($1)`,
            [held.map((e) => e.eventId)],
          );
          return rows.length === held.length;
        },
        90_000,
      );
      const resentAfterMs = Date.now() - killedAt;

      // the job goes on: the agent staged and asked for its reboot; the trial boot confirms
      await rig.waitFor('the reboot requested', async () => (await rig.rebootCount()) > 0, 90_000);
      expect(await rig.reboot()).toEqual({ boot: 'base-r2', trial: true });
      const done = await rig.waitFor(
        'the rollout completed',
        async () => {
          const current = await api('GET', `/rollouts/${rollout.id}`).catch(() => null);
          return current?.status === 'completed' ? current : null;
        },
        120_000,
      );
      expect(done.counts).toEqual({ confirmed: 1 });

      // every report exactly once: no event id twice, the whole story of the command in the device's order (a
      // report the stream lost arrives again later, after the next one: arrival order is not the story's)
      const stored = await query<{ event_id: string; type: string; duplicate: boolean }>(
        `SELECT event_id, type, coalesce((payload->>'duplicate')::boolean, false) AS duplicate
           FROM device_job_events WHERE device_id = $1 ORDER BY occurred_at, seq`,
        [DEVICE_ID],
      );
      expect(new Set(stored.map((row) => row.event_id)).size).toBe(stored.length);
      // the server re-sends open commands after a stream leader moved; the agent answers those with a
      // `duplicate` accepted (docs/protocol.md §5.2), which is not a step of the story
      const story = stored.filter((row) => row.type !== 'progress' && !row.duplicate).map((row) => row.type);
      expect(story).toEqual(['accepted', 'staged', 'rebooting', 'confirmed']);
      const installs = await query<{ n: number }>(
        `SELECT count(*)::int AS n FROM device_commands WHERE device_id = $1 AND type = 'install'`,
        [DEVICE_ID],
      );
      expect(installs[0].n).toBe(1);
      // and the agent's outbox is empty: everything it sent was acknowledged in the end
      await rig.waitFor('an empty outbox', async () => (await outbox()).length === 0, 30_000);
      console.log(
        JSON.stringify({
          point: 'agent-cluster-kill',
          killedNode: victim.options.name,
          survivor,
          heldUnacknowledged: held.map((e) => e.type),
          resentAfterMs,
          // events the agent sent again because no receipt came (NATS PUBACKed them, the stream lost them)
          resentWithoutReceipt: rig.logs.filter((line) => line.includes('re-sent events still without a receipt'))
            .length,
        }),
      );
    });
  },
);
