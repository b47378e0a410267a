import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Room on each heap page of `devices` for the next version of its rows (issue 12, docs/rollouts.md
 * "Performance"). Every state report, presence change and job event rewrites a device's row; PostgreSQL can
 * make that a heap-only-tuple (HOT) update, one that writes no index entry, only when the new version fits
 * on the row's own page and no indexed column (id, tags, booted_release, online) changed. At the default
 * fillfactor of 100 the pages are full, and 88 % of the burst-ingest updates in `npm run bench:rollout`
 * were not HOT: each also inserted into the primary key, the tags GIN index and the two b-trees.
 * Applies to pages written from now on; a table filled before this runs gets the room at its next
 * `VACUUM FULL` (or as its pages are rewritten).
 */
export class DevicesFillfactor1765000000000 implements MigrationInterface {
  name = 'DevicesFillfactor1765000000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE devices SET (fillfactor = 50)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE devices RESET (fillfactor)`);
  }
}
