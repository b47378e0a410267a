import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { createTestDatabase } from '../../../test/test-database';
import { dataSourceOptions } from '../../database/data-source-options';
import { startEmbeddedPostgres } from '../../database/embedded-postgres';
import { DeviceStatus } from '../device.entity';

export interface SeedDevice {
  id: string;
  tags: string[];
  status?: DeviceStatus;
  online?: boolean;
  bootedRelease?: string | null;
  /** also the device's one reported snapshot */
  bootedSnapshot?: string | null;
}

export interface MigratedDatabase {
  dataSource: DataSource;
  close(): Promise<void>;
}

/**
 * The migrated schema where the devices' SQL runs in production: PostgreSQL when TEST_DATABASE_URL is set,
 * else PGlite in a temp dir. `close()` removes what it made, also after a failed start.
 */
export async function openMigratedDatabase(tempPrefix: string): Promise<MigratedDatabase> {
  const database = await createTestDatabase();
  let dataDir: string | null = null;
  let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | null = null;
  let dataSource: DataSource | null = null;
  const close = async () => {
    if (dataSource?.isInitialized) await dataSource.destroy();
    await embedded?.stop();
    await database.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  };
  try {
    if (!database.url) {
      dataDir = await mkdtemp(join(tmpdir(), tempPrefix));
      embedded = await startEmbeddedPostgres(join(dataDir, 'pglite'), 1);
    }
    dataSource = new DataSource(dataSourceOptions(database.url ?? embedded!.url, embedded !== null));
    await dataSource.initialize();
    await dataSource.runMigrations();
    return { dataSource, close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

/** Devices as rows, without the provisioning path (its credentials cost a hash each). */
export async function seedDevices(dataSource: DataSource, devices: SeedDevice[]): Promise<void> {
  for (const device of devices) {
    const status = device.status ?? DeviceStatus.Active;
    const snapshot = device.bootedSnapshot ?? null;
    await dataSource.query(
      `INSERT INTO devices (id, tags, status, credential_hash, provisioned_by, online, booted_release, booted_snapshot, snapshots)
       VALUES ($1, $2, $3, $4, 'test', $5, $6, $7, $8)`,
      [
        device.id,
        device.tags,
        status,
        // a decommissioned device has no credential left
        status === DeviceStatus.Active ? 'hash' : null,
        device.online ?? false,
        device.bootedRelease ?? null,
        snapshot,
        JSON.stringify(snapshot ? [{ id: snapshot }] : []),
      ],
    );
  }
}
