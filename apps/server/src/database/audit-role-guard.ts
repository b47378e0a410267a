import { DataSource, QueryRunner } from 'typeorm';

/** The audit table and what makes it append-only (migrations/1764100000000-core.ts). */
const AUDIT_TABLE = 'audit_log';

/**
 * Run by the owner role after migrations: the server's role may read and write every table of the schema,
 * except that it may only SELECT and INSERT the audit log. It owns nothing, so it cannot ALTER (disable a
 * trigger), DROP, or replace the trigger function; not being a superuser, it cannot SET
 * session_replication_role. Re-run at every start, so tables of later migrations are covered.
 */
export async function grantAppRole(owner: QueryRunner, appRole: string): Promise<void> {
  const role = quoteIdent(appRole);
  await owner.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
  await owner.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
  await owner.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
  await owner.query(`REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON ${AUDIT_TABLE} FROM ${role}`);
  await owner.query(`REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON migrations FROM ${role}`);
}

/**
 * Why the server's connection could rewrite the audit log, or an empty list. Checked at boot when the
 * roles are separated (DATABASE_MIGRATION_URL), so a misconfigured role fails the start instead of
 * silently weakening the guarantee.
 */
export async function auditBypassProblems(app: DataSource, ownerRole: string): Promise<string[]> {
  const [row] = (await app.query(
    `SELECT current_user AS role,
            r.rolsuper AS superuser,
            pg_has_role(current_user, $1, 'MEMBER') AS owner_member,
            pg_get_userbyid(c.relowner) = current_user AS owns_audit,
            has_table_privilege(c.oid, 'UPDATE') AS can_update,
            has_table_privilege(c.oid, 'DELETE') AS can_delete,
            has_table_privilege(c.oid, 'TRUNCATE') AS can_truncate,
            has_table_privilege(c.oid, 'TRIGGER') AS can_trigger
       FROM pg_roles r, pg_class c
      WHERE r.rolname = current_user AND c.oid = $2::regclass`,
    [ownerRole, AUDIT_TABLE],
  )) as Array<Record<string, boolean | string>>;
  const problems: string[] = [];
  const role = String(row.role);
  if (row.superuser) problems.push(`the role ${role} of DATABASE_URL is a superuser`);
  if (role === ownerRole) problems.push('DATABASE_URL and DATABASE_MIGRATION_URL use the same role');
  else if (row.owner_member)
    problems.push(`the role ${role} of DATABASE_URL is a member of the owner role ${ownerRole}`);
  if (row.owns_audit) problems.push(`the role ${role} of DATABASE_URL owns ${AUDIT_TABLE}`);
  for (const privilege of ['update', 'delete', 'truncate', 'trigger'] as const) {
    if (row[`can_${privilege}`])
      problems.push(`the role ${role} of DATABASE_URL has ${privilege.toUpperCase()} on ${AUDIT_TABLE}`);
  }
  return problems;
}

export async function currentRole(dataSource: DataSource | QueryRunner): Promise<string> {
  const [row] = (await dataSource.query('SELECT current_user AS role')) as Array<{ role: string }>;
  return row.role;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
