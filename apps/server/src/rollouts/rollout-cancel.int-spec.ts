/* eslint-disable @typescript-eslint/no-explicit-any -- REST answers are read as loose JSON in these tests */
import { SimulatedDevice } from '../../../../tools/fleet-sim/src/simulated-device';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { provisionDevices, seedRelease, waitFor } from './testing/rollout-fixtures';
import { adminApi } from '../../test/admin-api';
import { describeOnBrokers } from '../../test/fleet-brokers';

jest.setTimeout(90_000);

/**
 * Issue 9: canceling a rollout withdraws what it already sent. Devices in flight (here: staged, a trial
 * requested, waiting for a reboot that rebootMode `never` leaves to the operator) get a `cancel` naming
 * their install command and are canceled at once, so their next rollout is dispatched now rather than
 * after the old wave's timeout (10 minutes here; the test gives it 30 s).
 */
describeOnBrokers(
  'canceling a rollout with devices in flight (real server, simulated devices over real MQTT)',
  (broker) => {
    let server: TestServer;
    const devices: SimulatedDevice[] = [];

    beforeAll(async () => {
      server = await startTestServer({ env: broker().serverEnv });
    });

    afterAll(async () => {
      await Promise.all(devices.map((device) => device.stop()));
      await server?.close();
    });

    const api = adminApi(() => server);

    const rollout = (name: string, version: string, extra: Record<string, unknown> = {}) =>
      api('POST', '/rollouts', {
        name,
        release: { name: 'cancel-os', version },
        selector: { tags: ['cancel-fleet'] },
        waves: [{ percent: 100, timeoutSeconds: 600 }],
        ...extra,
      });

    it('sends cancel to every device in flight, cancels their executions, and frees them for the next rollout', async () => {
      await seedRelease(server.dataSource, { name: 'cancel-os', version: '2' });
      await seedRelease(server.dataSource, { name: 'cancel-os', version: '3' });
      const ids = ['cancel-0', 'cancel-1', 'cancel-2', 'cancel-gone'];
      const sims = await provisionDevices(
        server,
        ids.map((id) => ({ id, tags: ['cancel-fleet'] })),
        100,
        (id, credential) => broker().connection(server, id, credential),
      );
      devices.push(...sims);
      // a fresh NATS cluster refuses the first MQTT connects while it places the account's $MQTT_ streams
      await Promise.all(sims.map((sim) => (broker().name === 'embedded' ? sim.connect() : sim.connectRetrying())));
      await waitFor(
        async () =>
          (
            (await server.dataSource.query(
              `SELECT count(*)::int AS n FROM devices WHERE id = ANY ($1) AND booted_snapshot IS NOT NULL`,
              [ids],
            )) as { n: number }[]
          )[0].n === ids.length,
        10_000,
        'state reports',
      );

      const first = await rollout('cancel 2', '2', { rebootMode: 'never' });
      await waitFor(
        async () => ((await api('GET', `/rollouts/${first.id}`)).counts.installed === ids.length ? true : null),
        20_000,
        'every device staged with a trial requested',
      );
      const installs = new Map<string, string>();
      for (const id of ids) installs.set(id, (await api('GET', `/rollouts/${first.id}/executions/${id}`)).commandId);
      // one device in flight is decommissioned before the cancel: its execution is canceled without a command
      await sims[3].stop();
      await api('POST', '/devices/cancel-gone/decommission', { reason: 'scrapped' });

      const canceled = await api('POST', `/rollouts/${first.id}/cancel`, { reason: 'wrong build' });
      expect(canceled).toMatchObject({ status: 'canceled', counts: { canceled: ids.length } });

      // each active device got a cancel naming its install command, and answered it
      for (const id of ids.slice(0, 3)) {
        const cancel = await waitFor(
          async () => {
            const page = await api<{ items: any[] }>('GET', `/devices/${id}/commands`);
            const found = page.items.find((c) => c.type === 'cancel');
            return found?.status === 'completed' ? found : null;
          },
          10_000,
          `${id} answering its cancel`,
        );
        expect(cancel.payload).toMatchObject({ type: 'cancel', targetCommandId: installs.get(id) });
        const execution = await api('GET', `/rollouts/${first.id}/executions/${id}`);
        expect(execution).toMatchObject({ state: 'canceled', failureReason: expect.stringContaining('canceled') });
      }
      const gone = await api<{ items: any[] }>('GET', '/devices/cancel-gone/commands');
      expect(gone.items.filter((c) => c.type === 'cancel')).toEqual([]);
      expect(await api('GET', `/rollouts/${first.id}/executions/cancel-gone`)).toMatchObject({ state: 'canceled' });

      const timeline = await api<Array<{ action: string; after: any }>>('GET', `/rollouts/${first.id}/timeline`);
      expect(timeline.find((e) => e.action === 'rollout.canceled')?.after).toMatchObject({
        canceledInFlight: ids.length,
        cancelCommands: 3,
      });

      // the next rollout reaches them now, not after the old wave's 10-minute timeout
      const second = await rollout('cancel 3', '3');
      const done = await waitFor(
        async () => {
          const view = await api('GET', `/rollouts/${second.id}`);
          return view.status === 'completed' ? view : null;
        },
        30_000,
        'the next rollout completing',
      );
      expect(done.counts).toEqual({ confirmed: 3 }); // a decommissioned device is not selected
      for (const sim of sims.slice(0, 3)) expect(sim.bootedSnapshot).toBe('cancel-os-3');
    });
  },
);
