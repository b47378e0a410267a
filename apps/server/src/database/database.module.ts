import { DynamicModule, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from './data-source-options';
import { auditBypassProblems, currentRole, grantAppRole } from './audit-role-guard';
import { runMigrations } from './migration-runner';

/**
 * TypeORM on `url`, migrated (under the advisory lock) before any other module touches the schema. With a
 * `migrationUrl` (DATABASE_MIGRATION_URL) the migrations run as that owner role, which then grants the
 * server's role only what it may do (audit-role-guard.ts), and the start fails if the server's role could
 * still rewrite the audit log.
 */
@Module({})
export class DatabaseModule {
  static forRoot(url: string, embedded: boolean, migrationUrl: string | null = null): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: () => ({
            ...dataSourceOptions(url, embedded),
            autoLoadEntities: true,
            // a database that is not up yet is retried; a role that could rewrite the audit log is not
            toRetry: (error: unknown) => !(error instanceof AuditRoleError),
          }),
          dataSourceFactory: async (options) => {
            const dataSource = await new DataSource(options!).initialize();
            try {
              if (migrationUrl) await migrateAsOwner(dataSource, migrationUrl);
              else {
                await runMigrations(dataSource);
                if (!embedded) {
                  new Logger('Database').warn(
                    'DATABASE_MIGRATION_URL is not set: the server runs as the schema owner, which could disable the audit log trigger (README § Security)',
                  );
                }
              }
            } catch (error) {
              await dataSource.destroy();
              throw error;
            }
            return dataSource;
          },
        }),
      ],
    };
  }
}

class AuditRoleError extends Error {}

async function migrateAsOwner(app: DataSource, migrationUrl: string): Promise<void> {
  const appRole = await currentRole(app);
  const owner = await new DataSource({ ...dataSourceOptions(migrationUrl, false), extra: { max: 1 } }).initialize();
  let ownerRole: string;
  try {
    ownerRole = await currentRole(owner);
    await runMigrations(owner, (runner) => grantAppRole(runner, appRole));
  } finally {
    await owner.destroy();
  }
  const problems = await auditBypassProblems(app, ownerRole);
  if (problems.length > 0) {
    throw new AuditRoleError(`the server's database role could rewrite the audit log: ${problems.join('; ')}`);
  }
  new Logger('Database').log(`migrated as ${ownerRole}; serving as ${appRole} (audit log: SELECT and INSERT only)`);
}
