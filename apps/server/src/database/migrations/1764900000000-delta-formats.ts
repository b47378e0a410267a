import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Delta format negotiation (issue 14, docs/protocol.md §5.1 and §8): the format a delta artifact's manifest
 * names, and the formats a device's agent reports it reads. Both nullable: NULL is "unknown" (a manifest
 * built before the field, an agent older than the report field), which the artifact picker treats on its own.
 */
export class DeltaFormats1764900000000 implements MigrationInterface {
  name = 'DeltaFormats1764900000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE release_artifacts ADD COLUMN delta_format integer`);
    await db.query(
      `ALTER TABLE release_artifacts ADD CONSTRAINT release_artifacts_delta_format_check CHECK (delta_format IS NULL OR kind = 'delta')`,
    );
    await db.query(`ALTER TABLE devices ADD COLUMN delta_formats integer[]`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE devices DROP COLUMN delta_formats`);
    await db.query(`ALTER TABLE release_artifacts DROP COLUMN delta_format`);
  }
}
