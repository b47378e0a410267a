import { DataSource } from 'typeorm';
import { DeviceStatus } from './device.entity';
import { MigratedDatabase, openMigratedDatabase, SeedDevice, seedDevices } from './testing/seeded-database';
import { DeviceSelector, selectorCondition } from './device-selection';

const FLEET: SeedDevice[] = [
  { id: 'gw_1', tags: ['eu', 'canary'], online: true, bootedRelease: 'demo@1.0' },
  { id: 'gw_2', tags: ['eu'], online: true, bootedRelease: 'demo@1.0' },
  { id: 'gw_4', tags: ['eu', 'canary'], online: true, bootedRelease: 'demo@1.0', status: DeviceStatus.Decommissioned },
  { id: 'gw_5', tags: ['eu', 'canary'], online: false, bootedRelease: 'demo@1.0' },
  // `_` is a LIKE wildcard: an id prefix `gw_` must not match this one
  { id: 'gwx3', tags: ['eu', 'canary'], online: true, bootedRelease: 'demo@1.0' },
  { id: 'other', tags: ['eu', 'canary', 'us'], online: true, bootedRelease: 'demo@2.0' },
];

/**
 * The selector's SQL run where it runs in production: against the migrated schema (PostgreSQL when
 * TEST_DATABASE_URL is set, else PGlite) with a seeded fleet, asserting which devices it picks.
 */
describe('selectorCondition on a real database', () => {
  let database: MigratedDatabase;
  let dataSource: DataSource;

  beforeAll(async () => {
    database = await openMigratedDatabase('cowroot-selector-');
    dataSource = database.dataSource;
    await seedDevices(dataSource, FLEET);
  });

  afterAll(async () => {
    await database?.close();
  });

  /** Runs the condition after two parameters of the caller's own, as the rollout queries place it. */
  async function select(selector: DeviceSelector): Promise<string[]> {
    const condition = selectorCondition(selector, 'dev', 3);
    const rows = (await dataSource.query(
      `SELECT dev.id FROM devices dev WHERE dev.id <> $1 AND dev.id <> $2 AND ${condition.sql} ORDER BY dev.id`,
      ['not-a-device', 'neither', ...condition.params],
    )) as { id: string }[];
    return rows.map((row) => row.id);
  }

  it('selects every active device for `all`, never a decommissioned one', async () => {
    await expect(select({ all: true })).resolves.toEqual(['gw_1', 'gw_2', 'gw_5', 'gwx3', 'other']);
  });

  it('requires every tag to be present', async () => {
    await expect(select({ tags: ['eu', 'canary'] })).resolves.toEqual(['gw_1', 'gw_5', 'gwx3', 'other']);
    await expect(select({ tags: ['canary', 'us'] })).resolves.toEqual(['other']);
  });

  it('combines tags and filters with AND, and takes an id prefix literally', async () => {
    await expect(select({ tags: ['canary'], filter: { online: true, idPrefix: 'gw_' } })).resolves.toEqual(['gw_1']);
    await expect(select({ filter: { online: false } })).resolves.toEqual(['gw_5']);
    await expect(select({ filter: { bootedRelease: 'demo@2.0' } })).resolves.toEqual(['other']);
  });

  it('takes explicit ids only when the device exists and is active; an empty list selects nothing', async () => {
    await expect(select({ deviceIds: ['gw_2', 'gw_4', 'missing'] })).resolves.toEqual(['gw_2']);
    await expect(select({ deviceIds: [] })).resolves.toEqual([]);
  });
});
