import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Devices, the commands sent to them and the job events they report (apps/server/src/devices).
 * A device row is never deleted: decommissioning revokes its credential and keeps the row for audit.
 */
export class Devices1764100000100 implements MigrationInterface {
  name = 'Devices1764100000100';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE devices (
        id text PRIMARY KEY,
        tags text[] NOT NULL DEFAULT '{}',
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'decommissioned')),
        credential_hash text,
        provisioned_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        decommissioned_at timestamptz,
        decommission_reason text,
        online boolean NOT NULL DEFAULT false,
        -- the server instance (mqtt_brokers.id) holding the device's MQTT session while online
        session_broker text,
        last_seen_at timestamptz,
        last_connected_at timestamptz,
        agent_version text,
        booted_snapshot text,
        booted_release text,
        trial_boot boolean,
        fallback_snapshot text,
        pending_trial jsonb,
        last_trial_result jsonb,
        snapshots jsonb NOT NULL DEFAULT '[]',
        free_bytes bigint,
        health jsonb,
        state_seq integer,
        state_sent_at timestamptz,
        state_received_at timestamptz,
        CHECK (status = 'active' OR credential_hash IS NULL)
      )`);
    // tag filters use `tags @> ARRAY[...]`; release filters and "who runs X" queries use booted_release
    await db.query(`CREATE INDEX devices_tags_idx ON devices USING gin (tags)`);
    await db.query(`CREATE INDEX devices_booted_release_idx ON devices (booted_release, id)`);
    await db.query(`CREATE INDEX devices_online_idx ON devices (online, id)`);

    // every server instance's embedded broker, with a heartbeat: devices whose session sat on an instance
    // that stopped beating are marked offline by the others (and by the next start)
    await db.query(`
      CREATE TABLE mqtt_brokers (
        id text PRIMARY KEY,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now()
      )`);

    await db.query(`
      CREATE TABLE device_commands (
        id uuid PRIMARY KEY,
        device_id text NOT NULL REFERENCES devices (id),
        type text NOT NULL,
        payload jsonb NOT NULL,
        status text NOT NULL,
        created_by text NOT NULL,
        created_by_type text NOT NULL,
        -- millisecond precision: the value goes into pagination cursors as an ISO string
        created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
        updated_at timestamptz NOT NULL DEFAULT now(),
        last_event jsonb
      )`);
    await db.query(`CREATE INDEX device_commands_device_idx ON device_commands (device_id, created_at DESC, id DESC)`);
    // commands the device has not acknowledged yet are re-sent whenever it subscribes again
    await db.query(
      `CREATE INDEX device_commands_undelivered_idx ON device_commands (device_id, created_at) WHERE status IN ('queued', 'sent')`,
    );

    await db.query(`
      CREATE TABLE device_job_events (
        seq bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        device_id text NOT NULL REFERENCES devices (id),
        command_id uuid NOT NULL REFERENCES device_commands (id),
        type text NOT NULL,
        occurred_at timestamptz NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        payload jsonb NOT NULL
      )`);
    await db.query(`CREATE INDEX device_job_events_device_idx ON device_job_events (device_id, seq DESC)`);
    await db.query(`CREATE INDEX device_job_events_command_idx ON device_job_events (command_id, seq)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE device_job_events`);
    await db.query(`DROP TABLE device_commands`);
    await db.query(`DROP TABLE mqtt_brokers`);
    await db.query(`DROP TABLE devices`);
  }
}
