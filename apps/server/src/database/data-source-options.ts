import { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from './migrations';

/**
 * Shared by the server and the migration CLI; schema changes happen only through migrations.
 * `embedded`: PGlite runs one session for every socket, and pglite-socket interleaves the extended-protocol
 * messages (Parse/Bind/Execute) of concurrent connections, which can answer one query with another's
 * rows. One pooled connection serialises every query, which is all a single-threaded PGlite can do anyway.
 */
export function dataSourceOptions(url: string, embedded: boolean): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    extra: { max: embedded ? 1 : 10 },
  };
}
