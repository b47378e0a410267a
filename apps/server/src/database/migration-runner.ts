import { Logger } from '@nestjs/common';
import { DataSource, Migration, MigrationExecutor, QueryRunner } from 'typeorm';

/** Arbitrary but fixed: every cowroot server instance contends for the same key. */
export const MIGRATION_LOCK_KEY = 0x636f77726f6f74n; // "cowroot"

/**
 * Runs `work` on one connection that holds a PostgreSQL advisory lock, so replicas that start together
 * migrate once and the others wait, then find nothing to do. The migrations run on that same connection:
 * the embedded database's pool has a single connection.
 */
export async function withMigrationLock<T>(
  dataSource: DataSource,
  work: (runner: QueryRunner) => Promise<T>,
): Promise<T> {
  const lockRunner = dataSource.createQueryRunner();
  await lockRunner.connect();
  try {
    await lockRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    try {
      return await work(lockRunner);
    } finally {
      await lockRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    }
  } finally {
    await lockRunner.release();
  }
}

/** `afterMigrate` runs on the same connection, still under the lock (the app role's grants). */
export async function runMigrations(
  dataSource: DataSource,
  afterMigrate?: (runner: QueryRunner) => Promise<void>,
): Promise<Migration[]> {
  const logger = new Logger('Migrations');
  const applied = await withMigrationLock(dataSource, async (runner) => {
    const migrations = await executor(dataSource, runner).executePendingMigrations();
    await afterMigrate?.(runner);
    return migrations;
  });
  for (const migration of applied) logger.log(`applied ${migration.name}`);
  return applied;
}

export async function revertLastMigration(dataSource: DataSource): Promise<void> {
  await withMigrationLock(dataSource, (runner) => executor(dataSource, runner).undoLastMigration());
}

function executor(dataSource: DataSource, runner: QueryRunner): MigrationExecutor {
  const migrations = new MigrationExecutor(dataSource, runner);
  migrations.transaction = 'each';
  return migrations;
}
