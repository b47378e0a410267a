import { MigrationInterface, QueryRunner } from 'typeorm';

/** Tables whose changes the dashboard follows live, with the column naming the changed subject. */
const FOLLOWED: Array<{ table: string; topic: string; column: string }> = [
  { table: 'rollouts', topic: 'rollout', column: 'id' },
  { table: 'rollout_waves', topic: 'rollout', column: 'rollout_id' },
  { table: 'rollout_executions', topic: 'rollout', column: 'rollout_id' },
  { table: 'devices', topic: 'device', column: 'id' },
  { table: 'device_commands', topic: 'device', column: 'device_id' },
  { table: 'releases', topic: 'release', column: 'id' },
  { table: 'release_artifacts', topic: 'release', column: 'release_id' },
  { table: 'audit_log', topic: 'audit', column: 'subject_id' },
];

/**
 * The dashboard's sessions and its change feed (docs/dashboard.md "Live updates").
 *
 * web_sessions: a browser logs in with an API token once and then holds only an opaque session id in an
 * HttpOnly cookie; the row (hashed id) lives in the database so every replica knows the session, and it
 * dies with its token (revoked tokens are joined out).
 *
 * change_feed: statement-level triggers write one row per statement and topic with the distinct subject
 * ids (at most 100; more is recorded as NULL = "many"), then NOTIFY cowroot_changes. A replica LISTENs on
 * PostgreSQL; on PGlite, whose socket server cannot deliver a NOTIFY to another connection, it polls the
 * table. Either way it reads rows after the last id it saw, so nothing is missed between wake-ups.
 */
export class Dashboard1764800000000 implements MigrationInterface {
  name = 'Dashboard1764800000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE web_sessions (
        id_hash text PRIMARY KEY,
        token_id uuid NOT NULL REFERENCES api_tokens (id),
        csrf_token text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      )`);
    await db.query(`CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at)`);
    await db.query(`
      CREATE TABLE change_feed (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        topic text NOT NULL,
        ids text[]
      )`);
    await db.query(`CREATE INDEX change_feed_at_idx ON change_feed (at)`);
    // TG_ARGV: topic, subject column. The transition table holds the statement's rows.
    await db.query(`
      CREATE FUNCTION cowroot_change_feed() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        subject_ids text[];
      BEGIN
        EXECUTE format('SELECT array_agg(DISTINCT s) FROM (SELECT %I::text AS s FROM changed_rows LIMIT 101) t',
                       TG_ARGV[1]) INTO subject_ids;
        IF subject_ids IS NULL THEN RETURN NULL; END IF;
        IF cardinality(subject_ids) > 100 THEN subject_ids := NULL; END IF;
        INSERT INTO change_feed (topic, ids) VALUES (TG_ARGV[0], subject_ids);
        PERFORM pg_notify('cowroot_changes', TG_ARGV[0]);
        RETURN NULL;
      END $$`);
    for (const { table, topic, column } of FOLLOWED) {
      // a trigger with a transition table takes one event, so INSERT and UPDATE get one each
      for (const event of ['INSERT', 'UPDATE'] as const) {
        if (table === 'audit_log' && event === 'UPDATE') continue; // append-only
        await db.query(`
          CREATE TRIGGER ${table}_change_feed_${event.toLowerCase()} AFTER ${event} ON ${table}
          REFERENCING NEW TABLE AS changed_rows
          FOR EACH STATEMENT EXECUTE FUNCTION cowroot_change_feed('${topic}', '${column}')`);
      }
    }
  }

  async down(db: QueryRunner): Promise<void> {
    for (const { table } of FOLLOWED) {
      await db.query(`DROP TRIGGER IF EXISTS ${table}_change_feed_insert ON ${table}`);
      await db.query(`DROP TRIGGER IF EXISTS ${table}_change_feed_update ON ${table}`);
    }
    await db.query(`DROP FUNCTION cowroot_change_feed()`);
    await db.query(`DROP TABLE change_feed`);
    await db.query(`DROP TABLE web_sessions`);
  }
}
