import { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from './migrations';

/** Shared by the server and the migration CLI; schema changes happen only through migrations. */
export function dataSourceOptions(url: string): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    extra: { max: 10 },
  };
}
