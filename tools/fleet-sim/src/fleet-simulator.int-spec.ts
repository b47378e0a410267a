import { startTestServer, TestServer } from '../../../apps/server/test/start-test-server';
import { FleetSimulator } from './fleet-simulator';
import { SimOutcome } from './sim-outcome';

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe(FleetSimulator.name, () => {
  let server: TestServer;
  let fleet: FleetSimulator;

  beforeAll(async () => {
    server = await startTestServer();
    fleet = new FleetSimulator({
      httpUrl: server.httpUrl,
      token: server.adminToken,
      mqttUrl: `mqtt://127.0.0.1:${server.mqttPort}`,
      count: 4,
      idPrefix: 'simtest',
      tags: ['lab'],
      outcomeOf: (i) =>
        [SimOutcome.Confirm, SimOutcome.HealthReject, SimOutcome.BootloaderFallback, SimOutcome.Confirm][i],
      device: { rebootMs: 50 },
    });
    await fleet.provision();
    await fleet.connectAll();
  });

  afterAll(async () => {
    await fleet?.stopAll();
    await server?.close();
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${server.httpUrl}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/json', ...init.headers },
    });

  it('registers every simulated device as online with its reported state', async () => {
    const online = await until('4 devices online', async () => {
      const body = (await (await api('/api/v1/devices?tag=lab&online=true')).json()) as {
        items: Array<{ id: string }>;
      };
      return body.items.length === 4 ? body.items : undefined;
    });
    expect(online.map((d: { id: string }) => d.id).sort()).toEqual(fleet.devices.map((d) => d.id).sort());
  });

  it('plays each scripted outcome of a switch through the real server', async () => {
    // every simulated device holds a factory snapshot; commit makes a second one and tries it
    const sent = await Promise.all(
      fleet.devices.map(async (device) => {
        const res = await api(`/api/v1/devices/${device.id}/commands`, {
          method: 'POST',
          body: JSON.stringify({ type: 'commit', snapshot: 'local-1', reboot: { mode: 'now' } }),
        });
        expect(res.status).toBe(201);
        return { device, command: (await res.json()) as { id: string } };
      }),
    );
    const last = new Map<string, string>();
    const finalStatus = async (deviceId: string, commandId: string) =>
      until(`terminal status of ${deviceId}`, async () => {
        const body = (await (await api(`/api/v1/devices/${deviceId}/commands/${commandId}`)).json()) as {
          status: string;
        };
        last.set(deviceId, body.status);
        return ['confirmed', 'rolled-back', 'failed', 'rejected'].includes(body.status) && body.status !== 'rejected'
          ? body.status
          : undefined;
      });
    const statuses = await Promise.all(sent.map(({ device, command }) => finalStatus(device.id, command.id))).catch(
      (error) => {
        throw new Error(
          `${error.message}; last statuses ${JSON.stringify([...last])}; device events ${JSON.stringify(fleet.events.map((e) => [e.deviceId, e.event.type]))}`,
        );
      },
    );
    expect(statuses).toEqual(['confirmed', 'rolled-back', 'rolled-back', 'confirmed']);
    expect(fleet.device('simtest-00000').bootedSnapshot).toBe('local-1');
    expect(fleet.device('simtest-00001').bootedSnapshot).toBe('factory');
  });
});
