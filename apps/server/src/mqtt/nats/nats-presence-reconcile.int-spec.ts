import { SimulatedDevice } from '../../../../../tools/fleet-sim/src/simulated-device';
import { tempDir } from '../../../../../tools/nats/nats-fixture';
import { brokerTokenFetcher, NatsDeployment, startNatsDeployment } from '../../../../../tools/nats/nats-deployment';
import { startTestServer, TestServer } from '../../../test/start-test-server';
import { NatsConnections } from './nats-connections';
import { NatsPresence } from './nats-presence.service';
import { provisionDevices, waitFor } from '../../rollouts/testing/rollout-fixtures';

jest.setTimeout(120_000);

/**
 * BROKER=nats on a real 3-node cluster: presence of devices that connect or disconnect while no server
 * replica runs. Their connect and disconnect events go to no subscriber, so the replica that starts next
 * must take presence from the cluster's CONNZ listing (NatsPresence.reconcile): the device that connected
 * meanwhile is online, the one that left meanwhile is offline.
 */
describe('BROKER=nats presence across a time without replicas', () => {
  const tmp = tempDir('cowroot-nats-reconcile-');
  let nats: NatsDeployment;
  let server: TestServer | null = null;
  const devices: SimulatedDevice[] = [];

  beforeAll(async () => {
    nats = await startNatsDeployment(tmp.dir, 3);
  });

  afterAll(async () => {
    await Promise.all(devices.map((device) => device.stop()));
    await server?.close();
    await nats?.stop();
    tmp.remove();
  });

  const onlineOf = async (running: TestServer, ids: string[]) =>
    Object.fromEntries(
      (
        (await running.dataSource.query(`SELECT id, online FROM devices WHERE id = ANY($1) ORDER BY id`, [ids])) as {
          id: string;
          online: boolean;
        }[]
      ).map((row) => [row.id, row.online]),
    );

  it('a replica that starts sees who connected and who left while none ran', async () => {
    const first = await startTestServer({ env: nats.serverEnv });
    server = first;
    const ids = ['rc-stays', 'rc-leaves', 'rc-arrives'];
    // each device's broker JWT is fetched now: with no replica up there is nobody to issue one
    const tokens = new Map<string, string>();
    const created = await provisionDevices(
      first,
      ids.map((id) => ({ id })),
      100,
      (id, credential) => ({
        mqttUrl: nats.mqttUrls[ids.indexOf(id) % nats.mqttUrls.length],
        mqttPassword: async () => {
          tokens.set(id, tokens.get(id) ?? (await brokerTokenFetcher(first.httpUrl, id, credential)()));
          return tokens.get(id)!;
        },
        reconnect: true,
      }),
    );
    devices.push(...created);
    const [stays, leaves, arrives] = created;
    // a fresh cluster closes the first MQTT connects while it creates the account's $MQTT_ streams
    await Promise.all([stays.connectRetrying(), leaves.connectRetrying()]);
    await arrives.connectRetrying();
    await waitFor(
      async () => Object.values(await onlineOf(first, ids)).every(Boolean),
      20_000,
      'all three online through connect events',
    );
    await arrives.stop();
    await waitFor(async () => !(await onlineOf(first, ids))['rc-arrives'], 20_000, 'rc-arrives offline');

    await first.close({ keepData: true });
    server = null;
    // nobody listens now: these events are lost
    const again = sameDevice(arrives);
    devices.push(again);
    await again.connectRetrying();
    await leaves.stop();

    const second = await startTestServer({ env: nats.serverEnv, reuse: first });
    server = second;
    // the replica reconciles during its start, so the table is right once it answers
    expect(await onlineOf(second, ids)).toEqual({ 'rc-arrives': true, 'rc-leaves': false, 'rc-stays': true });
    const audit = (await second.dataSource.query(
      `SELECT subject_id, action FROM audit_log WHERE reason = $1 ORDER BY subject_id`,
      ['presence reconciled from the NATS cluster at server start'],
    )) as { subject_id: string; action: string }[];
    expect(audit).toEqual([
      { subject_id: 'rc-arrives', action: 'device.state.online' },
      { subject_id: 'rc-leaves', action: 'device.state.offline' },
    ]);
  });

  it('takes nobody offline while a node routed to the cluster does not answer', async () => {
    const running = server!;
    // a node neither of the replica's connections uses (it must stay reachable), with a device on it
    const used = [running.app.get(NatsConnections).app, running.app.get(NatsConnections).sys].map((nc) =>
      nc.getServer(),
    );
    const node = nats.nodes.find((n) => !used.some((server) => n.clientUrl.endsWith(server)))!;
    const [device] = await provisionDevices(running, [{ id: 'rc-frozen' }], 100, (id, credential) => ({
      mqttUrl: node.mqttUrl,
      mqttPassword: brokerTokenFetcher(running.httpUrl, id, credential),
      reconnect: true,
    }));
    devices.push(device);
    await device.connectRetrying();
    await waitFor(async () => (await onlineOf(running, ['rc-frozen']))['rc-frozen'], 20_000, 'rc-frozen online');
    const presence = running.app.get(NatsPresence);
    node.freeze();
    try {
      expect(await presence.reconcile()).toEqual({ online: 0, offline: 0 });
      expect(await onlineOf(running, ['rc-frozen'])).toEqual({ 'rc-frozen': true });
    } finally {
      node.thaw();
    }
    // answered again: the listing is complete and has the device, nothing to change
    expect(await presence.reconcile()).toEqual({ online: 0, offline: 0 });
    expect(await onlineOf(running, ['rc-frozen'])).toEqual({ 'rc-frozen': true });
  });
});

/** A stopped simulated device cannot connect again: the same device (id, credential, JWT) in a new one. */
function sameDevice(device: SimulatedDevice): SimulatedDevice {
  const options = (device as unknown as { options: ConstructorParameters<typeof SimulatedDevice>[0] }).options;
  return new SimulatedDevice({ ...options });
}
