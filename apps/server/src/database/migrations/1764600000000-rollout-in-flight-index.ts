import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The dispatcher's "one rollout command per device at a time" check (docs/rollouts.md "Dispatch") looks
 * up one device's in-flight executions for every queued device it takes. Without an index of its own the
 * planner combined the device index with the partial deadline index, which holds every in-flight
 * execution of the fleet, so each lookup cost as much as the fleet in flight: a 100k-device wave slowed
 * down batch after batch. This index answers the lookup from the device's own entries.
 */
export class RolloutInFlightIndex1764600000000 implements MigrationInterface {
  name = 'RolloutInFlightIndex1764600000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(
      `CREATE INDEX rollout_executions_device_in_flight_idx ON rollout_executions (device_id, rollout_id)
        WHERE state IN ('notified', 'downloading', 'installed', 'rebooting')`,
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX rollout_executions_device_in_flight_idx`);
  }
}
