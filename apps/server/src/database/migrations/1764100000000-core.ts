import { MigrationInterface, QueryRunner } from 'typeorm';

/** API tokens and the append-only audit log. */
export class Core1764100000000 implements MigrationInterface {
  name = 'Core1764100000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE api_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        token_hash text NOT NULL UNIQUE,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        last_used_at timestamptz
      )`);
    await db.query(`
      CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        actor_type text NOT NULL CHECK (actor_type IN ('operator', 'device', 'system')),
        actor_id text NOT NULL,
        actor_name text NOT NULL,
        action text NOT NULL,
        subject_type text NOT NULL,
        subject_id text NOT NULL,
        before jsonb,
        after jsonb,
        reason text,
        correlation_id text
      )`);
    await db.query(`CREATE INDEX audit_log_subject_idx ON audit_log (subject_type, subject_id, id)`);
    await db.query(`CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id)`);
    await db.query(`CREATE INDEX audit_log_action_idx ON audit_log (action text_pattern_ops, id)`);
    await db.query(`CREATE INDEX audit_log_at_idx ON audit_log (at)`);
    // The application never changes history; the database makes sure nobody else does by accident.
    await db.query(`
      CREATE FUNCTION cowroot_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
      END $$`);
    await db.query(`
      CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
      FOR EACH ROW EXECUTE FUNCTION cowroot_audit_log_append_only()`);
    await db.query(`
      CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
      FOR EACH STATEMENT EXECUTE FUNCTION cowroot_audit_log_append_only()`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE audit_log`);
    await db.query(`DROP FUNCTION cowroot_audit_log_append_only()`);
    await db.query(`DROP TABLE api_tokens`);
  }
}
