import { MigrationInterface, QueryRunner } from 'typeorm';

/** Release signing keys, releases and their artifacts (btrfs send streams). */
export class Releases1764200000000 implements MigrationInterface {
  name = 'Releases1764200000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE signing_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL UNIQUE,
        public_key_pem text NOT NULL,
        fingerprint text NOT NULL UNIQUE CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        revoked_by text
      )`);
    await db.query(`
      CREATE TABLE releases (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        version text NOT NULL,
        description text,
        snapshot_uuid text,
        created_by text NOT NULL,
        created_by_name text NOT NULL,
        -- millisecond precision, so a JS Date (and the list cursor made from it) names a row exactly
        created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
        CONSTRAINT releases_name_version_key UNIQUE (name, version)
      )`);
    await db.query(`CREATE INDEX releases_list_idx ON releases (created_at DESC, id DESC)`);
    await db.query(`CREATE INDEX releases_snapshot_uuid_idx ON releases (snapshot_uuid)`);
    // Parent columns name the parent release instead of referencing its row: an incremental stream stays
    // usable by devices holding the parent snapshot even after the parent release is deleted.
    await db.query(`
      CREATE TABLE release_artifacts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        release_id uuid NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
        file text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('full', 'incremental')),
        size bigint NOT NULL CHECK (size > 0),
        sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        compression text NOT NULL,
        snapshot_uuid text NOT NULL,
        parent_release_name text,
        parent_release_version text,
        parent_snapshot_uuid text,
        manifest bytea NOT NULL,
        signature text NOT NULL,
        signing_key_id uuid NOT NULL REFERENCES signing_keys (id),
        uploaded_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT release_artifacts_file_key UNIQUE (release_id, file),
        CHECK ((kind = 'full') = (parent_snapshot_uuid IS NULL))
      )`);
    await db.query(
      `CREATE UNIQUE INDEX release_artifacts_one_full ON release_artifacts (release_id) WHERE kind = 'full'`,
    );
    await db.query(
      `CREATE UNIQUE INDEX release_artifacts_one_per_parent ON release_artifacts (release_id, parent_snapshot_uuid) WHERE kind = 'incremental'`,
    );
    await db.query(`CREATE INDEX release_artifacts_parent_idx ON release_artifacts (parent_snapshot_uuid)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE release_artifacts`);
    await db.query(`DROP TABLE releases`);
    await db.query(`DROP TABLE signing_keys`);
  }
}
