import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { CommandFilter, DeviceFeed } from './device-feed';
import { DeviceStatus } from './device.entity';
import { MigratedDatabase, openMigratedDatabase, seedDevices } from './testing/seeded-database';

const FLEET = [
  { id: 'feed_1', tags: ['eu'], bootedRelease: 'demo@1.0', bootedSnapshot: 's1' },
  { id: 'feed_2', tags: ['eu'], bootedRelease: 'demo@2.0', bootedSnapshot: 's2' },
  { id: 'feed_3', tags: ['eu', 'canary'], bootedRelease: null, bootedSnapshot: null },
  { id: 'feed_4', tags: ['eu'], bootedRelease: 'demo@1.0', bootedSnapshot: 's1', status: DeviceStatus.Decommissioned },
];

/**
 * DeviceFeed, what rollouts read of the devices, against the migrated schema (PostgreSQL when
 * TEST_DATABASE_URL is set, else PGlite): selection, state, job events by arrival order, unacknowledged
 * commands, each restricted by the caller's own condition where it takes one.
 */
describe(DeviceFeed.name, () => {
  const feed = new DeviceFeed();
  let database: MigratedDatabase;
  let dataSource: DataSource;
  /** command ids by name; `acked` is completed, the others are queued or sent */
  const command = { a: randomUUID(), b: randomUUID(), other: randomUUID(), acked: randomUUID() };
  const seqs: bigint[] = [];
  const only =
    (...ids: string[]): CommandFilter =>
    (column) =>
      `${column} = ANY ('{${ids.join(',')}}'::uuid[])`;

  beforeAll(async () => {
    database = await openMigratedDatabase('cowroot-feed-');
    dataSource = database.dataSource;
    await seedDevices(dataSource, FLEET);
    const commands: Array<[string, string, string]> = [
      [command.a, 'feed_1', 'sent'],
      [command.b, 'feed_2', 'queued'],
      [command.other, 'feed_3', 'sent'],
      [command.acked, 'feed_3', 'completed'],
    ];
    for (const [id, deviceId, status] of commands) {
      await dataSource.query(
        `INSERT INTO device_commands (id, device_id, type, payload, status, created_by, created_by_type)
         VALUES ($1, $2, 'install', '{}', $3, 'test', 'operator')`,
        [id, deviceId, status],
      );
    }
    // arrival order: a accepted, other accepted, a progress, b accepted, a confirmed (received an hour ago)
    const events: Array<[string, string, string, string]> = [
      [command.a, 'feed_1', 'accepted', '0 seconds'],
      [command.other, 'feed_3', 'accepted', '0 seconds'],
      [command.a, 'feed_1', 'progress', '1 hour'],
      [command.b, 'feed_2', 'accepted', '0 seconds'],
      [command.a, 'feed_1', 'confirmed', '1 hour'],
    ];
    for (const [commandId, deviceId, type, age] of events) {
      const [{ seq }] = (await dataSource.query(
        `INSERT INTO device_job_events (event_id, device_id, command_id, type, occurred_at, received_at, payload)
         VALUES ($1, $2, $3, $4, now(), now() - $5::interval, $6) RETURNING seq::text AS seq`,
        [randomUUID(), deviceId, commandId, type, age, JSON.stringify({ type })],
      )) as { seq: string }[];
      seqs.push(BigInt(seq));
    }
  });

  afterAll(async () => {
    await database?.close();
  });

  it('counts the active devices a selector targets that are not booted into the release yet', async () => {
    const manager = dataSource.manager;
    await expect(feed.countTargets(manager, { tags: ['eu'] }, 'demo@1.0')).resolves.toBe(2);
    await expect(feed.countTargets(manager, { tags: ['canary'] }, 'demo@1.0')).resolves.toBe(1);
    await expect(feed.countTargets(manager, { all: true }, 'demo@9.0')).resolves.toBe(3);
  });

  it("hands the same selection to a caller's statement, with the caller's parameters first", async () => {
    const targets = feed.targets({ tags: ['eu'] }, '$2', 3);
    const rows = (await dataSource.query(
      `SELECT ${targets.id} AS id FROM ${targets.from} WHERE ${targets.id} <> $1 AND ${targets.where} ORDER BY ${targets.id}`,
      ['feed_3', 'demo@1.0', ...targets.params],
    )) as { id: string }[];
    expect(rows.map((row) => row.id)).toEqual(['feed_2']);
  });

  it('previews a selector: targeted, already on the release, the first ids', async () => {
    await expect(feed.preview(dataSource.manager, { tags: ['eu'] }, 'demo@1.0')).resolves.toEqual({
      targeted: 3,
      already: 1,
      sample: ['feed_1', 'feed_2', 'feed_3'],
    });
    await expect(feed.preview(dataSource.manager, { tags: ['canary'] }, null)).resolves.toEqual({
      targeted: 1,
      already: 0,
      sample: ['feed_3'],
    });
  });

  it("joins a device's state to the caller's rows, null for a device that does not exist", async () => {
    const device = feed.stateJoin('x.device_id');
    await dataSource.query(`UPDATE devices SET delta_formats = '{1,2,3}' WHERE id = 'feed_1'`);
    const rows = (await dataSource.query(
      `SELECT x.device_id, ${device.status} AS status, ${device.bootedSnapshot} AS booted, ${device.snapshots} AS snapshots,
              ${device.deltaFormats} AS formats
         FROM (VALUES ('feed_1'), ('feed_4'), ('gone')) AS x(device_id) ${device.join} ORDER BY x.device_id`,
    )) as { device_id: string; status: string | null; booted: string | null; snapshots: unknown; formats: unknown }[];
    expect(rows).toEqual([
      { device_id: 'feed_1', status: DeviceStatus.Active, booted: 's1', snapshots: [{ id: 's1' }], formats: [1, 2, 3] },
      {
        device_id: 'feed_4',
        status: DeviceStatus.Decommissioned,
        booted: 's1',
        snapshots: [{ id: 's1' }],
        formats: null,
      },
      { device_id: 'gone', status: null, booted: null, snapshots: null, formats: null },
    ]);
  });

  it('gives the active devices by id or by tag with what they boot and hold, by id', async () => {
    const byIds = await feed.activeSnapshots(dataSource.manager, { ids: ['feed_4', 'feed_2', 'feed_1', 'nobody'] });
    expect(byIds).toEqual([
      { id: 'feed_1', booted_snapshot: 's1', snapshots: [{ id: 's1' }] },
      { id: 'feed_2', booted_snapshot: 's2', snapshots: [{ id: 's2' }] },
    ]);
    const byTag = await feed.activeSnapshots(dataSource.manager, { tag: 'canary' });
    expect(byTag).toEqual([{ id: 'feed_3', booted_snapshot: null, snapshots: [] }]);
  });

  it('locks and returns only the active devices of a list', async () => {
    const active = await dataSource.transaction((manager) =>
      feed.lockActive(manager, ['feed_1', 'feed_4', 'gone', 'feed_3']),
    );
    expect([...active].sort()).toEqual(['feed_1', 'feed_3']);
  });

  it("reads job events by arrival order, within the window and the caller's commands only", async () => {
    const manager = dataSource.manager;
    const types = (events: { type: string; command_id: string }[]) => events.map((e) => e.type);
    const before = seqs[0] - 1n;
    const ours = only(command.a, command.b);
    await expect(feed.jobEventsAfter(manager, { afterSeq: before, limit: 10 }, ours).then(types)).resolves.toEqual([
      'accepted',
      'progress',
      'accepted',
      'confirmed',
    ]);
    await expect(
      feed.jobEventsAfter(manager, { afterSeq: before, throughSeq: seqs[2], limit: 10 }, ours).then(types),
    ).resolves.toEqual(['accepted', 'progress']);
    // the hour-old progress and confirmed events are outside a 60 s window
    const recent = await feed.jobEventsAfter(manager, { afterSeq: before, receivedWithinSeconds: 60, limit: 10 }, ours);
    expect(recent.map((e) => e.command_id)).toEqual([command.a, command.b]);
    const limited = await feed.jobEventsAfter(manager, { afterSeq: seqs[1], limit: 2 }, ours);
    expect(limited.map((e) => e.seq)).toEqual([seqs[2].toString(), seqs[3].toString()]);
    expect(limited[0]).toMatchObject({ device_id: 'feed_1', payload: { type: 'progress' } });
    await expect(feed.jobEventsAfter(manager, { afterSeq: before, limit: 0 }, ours)).rejects.toThrow(/limit/);
  });

  it('tells the newest arrival sequence after a position, 0 when nothing arrived since', async () => {
    await expect(feed.lastJobEventSeq(dataSource.manager, seqs[0])).resolves.toBe(seqs[4]);
    await expect(feed.lastJobEventSeq(dataSource.manager, seqs[4])).resolves.toBe(0n);
  });

  it("reads the settled outcome events of the caller's commands: no progress, none received lately", async () => {
    const events = await feed.settledJobEventsOf(
      dataSource.manager,
      { sql: `SELECT id FROM device_commands WHERE device_id = $1`, params: ['feed_1'] },
      60,
      10,
    );
    expect(events.map((e) => [e.command_id, e.type])).toEqual([[command.a, 'confirmed']]);
  });

  it("names the devices with an unacknowledged command among the caller's", async () => {
    const devices = await feed.devicesWithUnacknowledged(dataSource.manager, only(command.a, command.b, command.acked));
    expect(devices.sort()).toEqual(['feed_1', 'feed_2']);
  });
});
