import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { ConfigError, ServerConfig } from '../config/server-config';
import { dataSourceOptions } from './data-source-options';
import { revertLastMigration, runMigrations } from './migration-runner';
import { startEmbeddedPostgres } from './embedded-postgres';

/** `npm run db:migrate` / `npm run db:revert`: the same migrations and lock the server uses at boot. */
async function main(command: string | undefined): Promise<void> {
  if (command !== 'run' && command !== 'revert') {
    console.error('usage: migrate run|revert');
    process.exitCode = 2;
    return;
  }
  const config = ServerConfig.fromEnv(process.env);
  const embedded = config.databaseUrl ? null : await startEmbeddedPostgres(`${config.dataDir}/pglite`);
  // as the schema owner when the roles are separated; the server grants its own role at its next start
  const url = config.databaseMigrationUrl ?? config.databaseUrl ?? embedded!.url;
  const dataSource = await new DataSource(dataSourceOptions(url, embedded !== null)).initialize();
  try {
    if (command === 'run') {
      const applied = await runMigrations(dataSource);
      console.log(applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}` : 'no pending migrations');
    } else {
      await revertLastMigration(dataSource);
      console.log('reverted the last migration');
    }
  } finally {
    await dataSource.destroy();
    await embedded?.stop();
  }
}

main(process.argv[2]).catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : ((error as Error).stack ?? String(error)));
  process.exitCode = 1;
});
