import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import request from 'supertest';
import { describePrivileged, requireCommand, Requirement } from '../../../../tools/testing/privileged';
import { startTestServer, TestServer } from '../../test/start-test-server';

const run = promisify(execFile);

const requirePostgres: Requirement = {
  name: 'PostgreSQL',
  check: () => (process.env.TEST_DATABASE_URL ? null : 'TEST_DATABASE_URL is not set (needs a real PostgreSQL)'),
};

/**
 * README § Security: migrations run as an owner role, the server as a role that may only SELECT and INSERT
 * the audit log. Each way around the append-only trigger is tried as the server's role and must fail.
 */
describePrivileged('audit log the server role cannot rewrite', [requirePostgres, requireCommand('psql')], () => {
  const suffix = randomBytes(4).toString('hex');
  const owner = `cowroot_owner_${suffix}`;
  const app = `cowroot_app_${suffix}`;
  const database = `cowroot_roles_${suffix}`;
  const password = randomBytes(12).toString('hex');
  const adminUrl = process.env.TEST_DATABASE_URL ?? '';
  const urlFor = (role: string) => {
    const url = new URL(adminUrl);
    url.username = role;
    url.password = password;
    url.pathname = `/${database}`;
    return url.toString();
  };
  let server: TestServer;
  let asApp: Client;

  const superuser = async (sql: string) => {
    const client = new Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    // the roles as docker-compose makes them: its postgres init script, run as a superuser
    await superuser(`CREATE DATABASE ${database}`);
    const admin = new URL(adminUrl);
    await run('bash', [resolve(__dirname, '../../../../deploy/docker/postgres-init/10-cowroot-roles.sh')], {
      env: {
        ...process.env,
        PGHOST: admin.hostname,
        PGPORT: admin.port || '5432',
        PGPASSWORD: decodeURIComponent(admin.password),
        POSTGRES_USER: decodeURIComponent(admin.username),
        POSTGRES_DB: database,
        COWROOT_OWNER_ROLE: owner,
        COWROOT_APP_ROLE: app,
        COWROOT_OWNER_PASSWORD: password,
        COWROOT_APP_PASSWORD: password,
      },
    });
    server = await startTestServer({
      env: { DATABASE_URL: urlFor(app), DATABASE_MIGRATION_URL: urlFor(owner) },
    });
    asApp = new Client({ connectionString: urlFor(app) });
    await asApp.connect();
  });

  afterAll(async () => {
    await asApp?.end();
    await server?.close();
    await superuser(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await superuser(`DROP ROLE IF EXISTS ${app}`);
    await superuser(`DROP ROLE IF EXISTS ${owner}`);
  });

  it('serves and audits as the app role', async () => {
    await request(server.httpUrl)
      .post('/api/v1/tokens')
      .set('Authorization', `Bearer ${server.adminToken}`)
      .send({ name: 'ci', role: 'viewer' })
      .expect(201);
    const rows = await asApp.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'token.created'`);
    expect(rows.rows[0].n).toBeGreaterThanOrEqual(2);
    const [{ current_user: role }] = (await server.dataSource.query('SELECT current_user')) as Array<{
      current_user: string;
    }>;
    expect(role).toBe(app);
  });

  it.each([
    ['UPDATE', `UPDATE audit_log SET reason = 'rewritten'`, /permission denied/],
    ['DELETE', 'DELETE FROM audit_log', /permission denied/],
    ['TRUNCATE', 'TRUNCATE audit_log', /permission denied/],
    ['DISABLE TRIGGER', 'ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete', /must be owner/],
    ['DROP TRIGGER', 'DROP TRIGGER audit_log_no_update_delete ON audit_log', /must be owner/],
    [
      'replace the trigger function',
      `CREATE OR REPLACE FUNCTION cowroot_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
      /must be owner|permission denied/,
    ],
    ['DROP TABLE', 'DROP TABLE audit_log', /must be owner/],
    ['session_replication_role', 'SET session_replication_role = replica', /permission denied/],
  ])('refuses %s as the server role', async (_what, sql, error) => {
    await expect(asApp.query(sql)).rejects.toThrow(error);
    const count = await asApp.query('SELECT count(*)::int AS n FROM audit_log');
    expect(count.rows[0].n).toBeGreaterThan(0);
  });

  it('refuses to start when DATABASE_URL names a role that could bypass it', async () => {
    await expect(
      startTestServer({ env: { DATABASE_URL: urlFor(owner), DATABASE_MIGRATION_URL: urlFor(owner) } }),
    ).rejects.toThrow(/could rewrite the audit log: DATABASE_URL and DATABASE_MIGRATION_URL use the same role/);
  });
});
