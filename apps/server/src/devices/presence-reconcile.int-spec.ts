import { startTestServer, TestServer } from '../../test/start-test-server';
import { BrokerRegistry } from '../broker/broker-registry.service';
import { DevicePresenceService } from './device-presence.service';
import { DeviceStatus } from './device.entity';
import { seedDevices } from './testing/seeded-database';

const REASON = 'reconcile test';

/**
 * DevicePresenceService.reconcileConnected, the SQL behind BROKER=nats presence at a replica's start,
 * against the real schema: which rows the broker's listing may move, and which belong to the event path.
 */
describe('DevicePresenceService.reconcileConnected', () => {
  let server: TestServer;
  let presence: DevicePresenceService;

  beforeAll(async () => {
    server = await startTestServer();
    presence = server.app.get(DevicePresenceService);
  });

  afterAll(async () => {
    await server?.close();
  });

  const at = (iso: string) => new Date(iso);
  // an online row names this instance as its session holder, so the embedded broker's orphan reaping
  // (every heartbeat) leaves it alone while the test runs
  const set = (id: string, online: boolean, lastConnectedAt: string | null) =>
    server.dataSource.query(
      `UPDATE devices SET online = $2, last_connected_at = $3, session_broker = CASE WHEN $2 THEN $4 END WHERE id = $1`,
      [id, online, lastConnectedAt, server.app.get(BrokerRegistry).id],
    );
  const state = async () =>
    Object.fromEntries(
      (
        (await server.dataSource.query(`SELECT id, online FROM devices WHERE id LIKE 'pr-%' ORDER BY id`)) as {
          id: string;
          online: boolean;
        }[]
      ).map((row) => [row.id, row.online]),
    );

  it('takes listed devices online and unlisted ones offline, leaving what the event path already has', async () => {
    await seedDevices(server.dataSource, [
      { id: 'pr-arrived', tags: [] },
      { id: 'pr-handled', tags: [] },
      { id: 'pr-left', tags: [] },
      { id: 'pr-just-now', tags: [] },
      { id: 'pr-stays', tags: [] },
      { id: 'pr-retired', tags: [], status: DeviceStatus.Decommissioned },
    ]);
    // connected while no replica ran: the table still has its previous connection
    await set('pr-arrived', false, '2026-12-03T05:00:00Z');
    // this very connection's connect (and then disconnect) events were handled: the events win
    await set('pr-handled', false, '2026-12-03T06:00:00Z');
    // left while no replica ran
    await set('pr-left', true, '2026-12-03T05:00:00Z');
    // connected after the listing was taken: its connect event is the newer truth
    await set('pr-just-now', true, '2026-12-03T07:00:01Z');
    await set('pr-stays', true, '2026-12-03T05:00:00Z');
    await set('pr-retired', false, null);

    const result = await presence.reconcileConnected(
      [
        { deviceId: 'pr-arrived', start: at('2026-12-03T06:30:00Z') },
        { deviceId: 'pr-handled', start: at('2026-12-03T06:00:00Z') },
        { deviceId: 'pr-stays', start: at('2026-12-03T05:00:00Z') },
        { deviceId: 'pr-retired', start: at('2026-12-03T06:30:00Z') },
      ],
      at('2026-12-03T07:00:00Z'),
      REASON,
    );

    expect(result).toEqual({ online: ['pr-arrived'], offline: 1 });
    expect(await state()).toEqual({
      'pr-arrived': true,
      'pr-handled': false,
      'pr-just-now': true,
      'pr-left': false,
      'pr-retired': false,
      'pr-stays': true,
    });
    const [arrived] = (await server.dataSource.query(
      `SELECT last_connected_at FROM devices WHERE id = 'pr-arrived'`,
    )) as {
      last_connected_at: Date;
    }[];
    expect(arrived.last_connected_at.toISOString()).toBe('2026-12-03T06:30:00.000Z');
    const audit = (await server.dataSource.query(
      `SELECT subject_id, action FROM audit_log WHERE reason = $1 ORDER BY subject_id`,
      [REASON],
    )) as { subject_id: string; action: string }[];
    expect(audit).toEqual([
      { subject_id: 'pr-arrived', action: 'device.state.online' },
      { subject_id: 'pr-left', action: 'device.state.offline' },
    ]);
  });

  it('takes nobody offline from a listing that may lack connections (a node did not answer)', async () => {
    await seedDevices(server.dataSource, [
      { id: 'pr-unheard', tags: [] },
      { id: 'pr-back', tags: [] },
    ]);
    await set('pr-unheard', true, '2026-12-03T05:00:00Z');
    await set('pr-back', false, '2026-12-03T05:00:00Z');
    const result = await presence.reconcileConnected(
      [{ deviceId: 'pr-back', start: at('2026-12-03T06:30:00Z') }],
      null,
      REASON,
    );
    expect(result).toEqual({ online: ['pr-back'], offline: 0 });
    expect(await state()).toMatchObject({ 'pr-unheard': true, 'pr-back': true });
  });
});
