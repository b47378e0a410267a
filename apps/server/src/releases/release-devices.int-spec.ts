import {
  CommandType,
  DeviceChannel,
  deviceTopic,
  PROTOCOL_VERSION,
  RebootMode,
  SnapshotOrigin,
} from '@cowroot/protocol';
import { createHash, randomUUID } from 'node:crypto';
import { connectAsync, MqttClient } from 'mqtt';
import { call, GeneratedStream, MiB } from '../../test/artifact-http';
import { useReleaseRig } from '../../test/release-rig';
import { Actor } from '../auth/actor';
import { CommandDispatcher } from '../devices/command-dispatcher.service';
import { ArtifactUrlService } from './artifact-url.service';
import { ReleasesService } from './releases.service';

// Integration: the real server (PostgreSQL when TEST_DATABASE_URL is set, else PGlite) over real HTTP on
// loopback (test/artifact-http.ts: streams generated and responses hashed on the fly).

describe('releases and the devices that hold them (integration)', () => {
  const rig = useReleaseRig();

  describe('devices', () => {
    const deviceId = 'gw-releases-1';
    let credential: string;
    let fleet: { content: GeneratedStream; snapshotUuid: string };
    let mqttClient: MqttClient | undefined;
    let seq = 0;
    const basic = (id: string, secret: string) => ({
      Authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
    });

    /** The device reports its state over real MQTT; resolves once the server has stored it. */
    async function reportState(
      bootedSnapshot: string,
      snapshots: Array<{ id: string; receivedUuid: string | null }>,
    ): Promise<void> {
      const message = {
        v: PROTOCOL_VERSION,
        seq: ++seq,
        sentAt: new Date().toISOString(),
        agentVersion: 'test',
        bootedSnapshot,
        trialBoot: false,
        fallbackSnapshot: null,
        pendingTrial: null,
        lastTrialResult: null,
        snapshots: snapshots.map((snapshot) => ({
          id: snapshot.id,
          uuid: randomUUID(),
          receivedUuid: snapshot.receivedUuid,
          parentUuid: null,
          readOnly: true,
          origin: snapshot.receivedUuid ? SnapshotOrigin.Received : SnapshotOrigin.Committed,
          release: null,
          createdAt: new Date().toISOString(),
        })),
        health: null,
      };
      await mqttClient!.publishAsync(deviceTopic(deviceId, DeviceChannel.State), JSON.stringify(message), { qos: 1 });
      const deadline = Date.now() + 15000;
      for (;;) {
        const [row] = (await rig.server.dataSource.query('SELECT booted_snapshot FROM devices WHERE id = $1', [
          deviceId,
        ])) as { booted_snapshot: string | null }[];
        if (row?.booted_snapshot === bootedSnapshot) return;
        if (Date.now() > deadline) throw new Error(`state with booted snapshot ${bootedSnapshot} was not stored`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }

    beforeAll(async () => {
      fleet = await rig.publishSmall('fleet', '1.0');
      const provisioned = await call(rig.server, '/api/v1/devices', {
        method: 'POST',
        headers: { ...rig.admin, 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ id: deviceId })),
      });
      expect(provisioned.status).toBe(201);
      credential = (JSON.parse(provisioned.body.toString()) as { credential: string }).credential;
      mqttClient = await connectAsync(`mqtt://127.0.0.1:${rig.server.mqttPort}`, {
        clientId: deviceId,
        username: deviceId,
        password: credential,
        reconnectPeriod: 0,
      });
    });

    afterAll(async () => {
      await mqttClient?.endAsync();
    });

    it('lets a device download with its credential (resuming with Range) and refuses a wrong one', async () => {
      const path = '/api/v1/releases/fleet/1.0/artifacts/full.btrfs.zst';
      const whole = await call(rig.server, path, { headers: basic(deviceId, credential), hashBody: true });
      expect(whole.status).toBe(200);
      expect(whole.sha256).toBe(fleet.content.sha256());
      const resumed = await call(rig.server, path, {
        headers: { ...basic(deviceId, credential), Range: `bytes=${MiB}-` },
      });
      expect(resumed.status).toBe(206);
      expect(createHash('sha256').update(resumed.body).digest('hex')).toBe(fleet.content.sha256(MiB));
      expect((await call(rig.server, `${path}/manifest`, { headers: basic(deviceId, credential) })).status).toBe(200);

      expect((await call(rig.server, path, { headers: basic(deviceId, 'not-the-credential') })).status).toBe(401);
      expect((await call(rig.server, path, { headers: basic('gw-unknown', credential) })).status).toBe(401);
      // a device credential opens only the routes marked for devices
      expect((await call(rig.server, '/api/v1/releases', { headers: basic(deviceId, credential) })).status).toBe(401);
    });

    it('refuses to delete a release a device runs, and allows it once the device moved on', async () => {
      await reportState('fleet-1.0', [{ id: 'fleet-1.0', receivedUuid: fleet.snapshotUuid }]);
      const refused = await call(rig.server, '/api/v1/releases/fleet/1.0', { method: 'DELETE', headers: rig.admin });
      expect(refused.status).toBe(409);
      const error = (
        JSON.parse(refused.body.toString()) as {
          error: { code: string; details: { usages: Array<{ kind: string; id: string }> } };
        }
      ).error;
      expect(error.code).toBe('RELEASE_IN_USE');
      expect(error.details.usages).toEqual([expect.objectContaining({ kind: 'device', id: deviceId })]);

      // the device now runs a snapshot committed locally and only keeps fleet-1.0 in its inventory
      await reportState('local-1', [
        { id: 'fleet-1.0', receivedUuid: fleet.snapshotUuid },
        { id: 'local-1', receivedUuid: null },
      ]);
      expect(
        (await call(rig.server, '/api/v1/releases/fleet/1.0', { method: 'DELETE', headers: rig.admin })).status,
      ).toBe(204);
    });

    it('refuses to delete a release an unfinished install command still offers', async () => {
      await rig.publishSmall('fleet', '2.0');
      const releases = rig.server.app.get(ReleasesService);
      const { release, artifact } = await releases.getArtifact('fleet', '2.0', 'full.btrfs.zst');
      const operator: Actor = { type: 'operator', id: 'test', name: 'test' };
      const command = await rig.server.app.get(CommandDispatcher).dispatch(
        deviceId,
        {
          type: CommandType.Install,
          artifact: rig.server.app.get(ArtifactUrlService).offerFor(release, artifact),
          reboot: { mode: RebootMode.Never },
        },
        operator,
      );
      const refused = await call(rig.server, '/api/v1/releases/fleet/2.0', { method: 'DELETE', headers: rig.admin });
      expect(refused.status).toBe(409);
      expect(refused.body.toString()).toContain(command.id);

      await rig.server.dataSource.query(`UPDATE device_commands SET status = 'canceled' WHERE id = $1`, [command.id]);
      expect(
        (await call(rig.server, '/api/v1/releases/fleet/2.0', { method: 'DELETE', headers: rig.admin })).status,
      ).toBe(204);
    });
  });
});
