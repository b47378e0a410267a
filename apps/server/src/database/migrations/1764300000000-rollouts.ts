import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rollouts (waves, per-device executions with history), the engine's event cursor, and remote rollbacks
 * (apps/server/src/rollouts, apps/server/src/rollbacks). Device, command and release ids are not foreign
 * keys: those tables belong to other features; the services check them when a rollout is created.
 */
export class Rollouts1764300000000 implements MigrationInterface {
  name = 'Rollouts1764300000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE rollouts (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        release_id uuid NOT NULL,
        release_name text NOT NULL,
        release_version text NOT NULL,
        selector jsonb NOT NULL,
        abort_rules jsonb NOT NULL DEFAULT '[]',
        abort_fired jsonb NOT NULL DEFAULT '{}',
        dispatch_per_minute integer,
        randomize boolean NOT NULL DEFAULT true,
        continuous boolean NOT NULL DEFAULT false,
        reboot_mode text NOT NULL DEFAULT 'now',
        status text NOT NULL CHECK (status IN ('running', 'paused', 'completed', 'canceled', 'aborted')),
        status_reason text,
        current_wave integer NOT NULL DEFAULT 0,
        created_by text NOT NULL,
        created_by_name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
      )`);
    await db.query(`CREATE INDEX rollouts_created_idx ON rollouts (created_at DESC, id DESC)`);
    await db.query(
      `CREATE INDEX rollouts_active_idx ON rollouts (status) WHERE status IN ('running', 'paused', 'aborted')`,
    );

    await db.query(`
      CREATE TABLE rollout_waves (
        rollout_id uuid NOT NULL REFERENCES rollouts (id),
        index integer NOT NULL,
        size_kind text NOT NULL CHECK (size_kind IN ('count', 'percent')),
        size_value double precision NOT NULL,
        success_percent double precision NOT NULL,
        timeout_seconds integer NOT NULL,
        soak_seconds integer NOT NULL DEFAULT 0,
        requires_approval boolean NOT NULL DEFAULT false,
        status text NOT NULL DEFAULT 'pending'
          CHECK (status IN ('pending', 'awaiting-approval', 'running', 'soaking', 'succeeded', 'failed')),
        approved_by text,
        approved_at timestamptz,
        started_at timestamptz,
        soak_until timestamptz,
        finished_at timestamptz,
        verdict jsonb,
        PRIMARY KEY (rollout_id, index)
      )`);

    await db.query(`
      CREATE TABLE rollout_executions (
        id uuid PRIMARY KEY,
        rollout_id uuid NOT NULL REFERENCES rollouts (id),
        wave_index integer NOT NULL,
        device_id text NOT NULL,
        order_key integer NOT NULL,
        state text NOT NULL,
        attempt integer NOT NULL DEFAULT 1,
        command_id uuid UNIQUE,
        command_type text,
        artifact_id uuid,
        artifact_file text,
        artifact_kind text,
        artifact_bytes bigint,
        from_snapshot text,
        target_snapshot text,
        failure_reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        dispatched_at timestamptz,
        deadline_at timestamptz,
        finished_at timestamptz,
        revert_command_id uuid UNIQUE,
        revert_state text,
        UNIQUE (rollout_id, device_id)
      )`);
    await db.query(
      `CREATE INDEX rollout_executions_queue_idx ON rollout_executions (rollout_id, wave_index, order_key) WHERE state = 'queued'`,
    );
    await db.query(`CREATE INDEX rollout_executions_state_idx ON rollout_executions (rollout_id, wave_index, state)`);
    await db.query(
      `CREATE INDEX rollout_executions_deadline_idx ON rollout_executions (deadline_at) WHERE state IN ('notified', 'downloading', 'installed', 'rebooting')`,
    );
    await db.query(`CREATE INDEX rollout_executions_device_idx ON rollout_executions (device_id, created_at DESC)`);

    // one row per state change; event_id makes re-reading an event harmless
    await db.query(`
      CREATE TABLE rollout_execution_history (
        id bigserial PRIMARY KEY,
        execution_id uuid NOT NULL REFERENCES rollout_executions (id),
        attempt integer NOT NULL,
        from_state text,
        to_state text NOT NULL,
        event_id uuid UNIQUE,
        command_id uuid,
        at timestamptz NOT NULL DEFAULT now(),
        detail jsonb
      )`);
    await db.query(
      `CREATE INDEX rollout_execution_history_execution_idx ON rollout_execution_history (execution_id, id)`,
    );

    await db.query(
      `CREATE TABLE rollout_engine_cursor (id integer PRIMARY KEY CHECK (id = 1), event_seq bigint NOT NULL)`,
    );
    await db.query(`INSERT INTO rollout_engine_cursor (id, event_seq) VALUES (1, 0)`);

    await db.query(`
      CREATE TABLE rollbacks (
        id uuid PRIMARY KEY,
        target_type text NOT NULL CHECK (target_type IN ('device', 'tag', 'rollout')),
        target text NOT NULL,
        snapshot text,
        reason text,
        created_by text NOT NULL,
        created_by_name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await db.query(`
      CREATE TABLE rollback_devices (
        rollback_id uuid NOT NULL REFERENCES rollbacks (id),
        device_id text NOT NULL,
        snapshot text,
        command_id uuid UNIQUE,
        state text NOT NULL,
        detail text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (rollback_id, device_id)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE rollback_devices`);
    await db.query(`DROP TABLE rollbacks`);
    await db.query(`DROP TABLE rollout_engine_cursor`);
    await db.query(`DROP TABLE rollout_execution_history`);
    await db.query(`DROP TABLE rollout_executions`);
    await db.query(`DROP TABLE rollout_waves`);
    await db.query(`DROP TABLE rollouts`);
  }
}
