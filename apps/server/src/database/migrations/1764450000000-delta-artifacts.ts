import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Delta artifacts (issue 14, docs/protocol.md §8): a release artifact may be of kind 'delta' (binary
 * patches against its parent), at most one per parent beside the plain incremental.
 */
export class DeltaArtifacts1764450000000 implements MigrationInterface {
  name = 'DeltaArtifacts1764450000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE release_artifacts DROP CONSTRAINT release_artifacts_kind_check`);
    await db.query(
      `ALTER TABLE release_artifacts ADD CONSTRAINT release_artifacts_kind_check CHECK (kind IN ('full', 'incremental', 'delta'))`,
    );
    await db.query(
      `CREATE UNIQUE INDEX release_artifacts_one_delta_per_parent ON release_artifacts (release_id, parent_snapshot_uuid) WHERE kind = 'delta'`,
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DELETE FROM release_artifacts WHERE kind = 'delta'`);
    await db.query(`DROP INDEX release_artifacts_one_delta_per_parent`);
    await db.query(`ALTER TABLE release_artifacts DROP CONSTRAINT release_artifacts_kind_check`);
    await db.query(
      `ALTER TABLE release_artifacts ADD CONSTRAINT release_artifacts_kind_check CHECK (kind IN ('full', 'incremental'))`,
    );
  }
}
