import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * BROKER=nats: each device's NATS user key (the subject of every broker JWT issued to it) and when its
 * JWTs were last revoked. Every replica builds the account JWT's revocation list from these rows, so a
 * revocation pushed by one replica is not undone by the next push of another.
 */
export class BrokerKeys1764700000000 implements MigrationInterface {
  name = 'BrokerKeys1764700000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE device_broker_keys (
        device_id text PRIMARY KEY REFERENCES devices (id),
        user_public_key text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      )`);
    await db.query(
      `CREATE INDEX device_broker_keys_revoked_idx ON device_broker_keys (revoked_at) WHERE revoked_at IS NOT NULL`,
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE device_broker_keys`);
  }
}
