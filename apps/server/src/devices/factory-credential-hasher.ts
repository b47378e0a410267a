import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ServerConfig } from '../config/server-config';

/** Stored form of a factory credential: `hmac-sha256$<key id>$<hex digest>`. */
export const FACTORY_HASH_PREFIX = 'hmac-sha256$';

/**
 * Factory credentials (given in bulk provisioning) are chosen outside the server and may be weaker than the
 * 256-bit secrets it generates, so they are stored as HMAC-SHA256 under a server key that is not in the
 * database: a copy of the database alone does not allow guessing them offline. A keyed hash rather than a
 * slow KDF because every MQTT CONNECT verifies one, and a fleet reconnecting after a restart must not cost
 * a CPU-minute. The device id is part of the input, so two devices with the same credential differ.
 *
 * The key is COWROOT_CREDENTIAL_KEY, or one generated once in DATA_DIR/credential.key. Replicas sharing a
 * database need the same key; the key id in each hash lets the server refuse to start with another one.
 */
@Injectable()
export class FactoryCredentialHasher implements OnModuleInit {
  private readonly logger = new Logger(FactoryCredentialHasher.name);
  private key: Buffer | null = null;
  private id = '';

  constructor(
    private readonly config: ServerConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  /** Loads the key; fails the start (before any listener opens) when stored hashes were made with another. */
  async onModuleInit(): Promise<void> {
    const key = this.config.credentialKey ?? (await this.keyFromDataDir());
    this.key = Buffer.from(key, 'utf8');
    this.id = createHash('sha256').update(this.key).digest('hex').slice(0, 12);
    const rows: Array<{ key_id: string }> = await this.dataSource.query(
      `SELECT DISTINCT split_part(credential_hash, '$', 2) AS key_id FROM devices WHERE credential_hash LIKE $1`,
      [`${FACTORY_HASH_PREFIX}%`],
    );
    const foreign = rows.map((row) => row.key_id).filter((id) => id !== this.id);
    if (foreign.length > 0) {
      throw new Error(
        `factory device credentials are hashed with credential key ${foreign.join(', ')}, this server has ${this.id}: set COWROOT_CREDENTIAL_KEY (or DATA_DIR/credential.key) to the key they were provisioned with`,
      );
    }
  }

  /** Short public fingerprint of the key (never the key). */
  get keyId(): string {
    return this.id;
  }

  hash(deviceId: string, credential: string): string {
    return `${FACTORY_HASH_PREFIX}${this.id}$${this.digest(deviceId, credential)}`;
  }

  /** True for a stored hash of this form made with this server's key. */
  verify(deviceId: string, credential: string, stored: string): boolean {
    const [, keyId, digest] = stored.split('$');
    if (keyId !== this.id || !digest) return false;
    const actual = Buffer.from(this.digest(deviceId, credential), 'hex');
    const expected = Buffer.from(digest, 'hex');
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  private digest(deviceId: string, credential: string): string {
    if (!this.key) throw new Error('FactoryCredentialHasher used before its key was loaded');
    // device ids never contain ':' (docs/protocol.md §2)
    return createHmac('sha256', this.key).update(`${deviceId}:${credential}`, 'utf8').digest('hex');
  }

  private async keyFromDataDir(): Promise<string> {
    const path = join(this.config.dataDir, 'credential.key');
    try {
      return (await readFile(path, 'utf8')).trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    await mkdir(this.config.dataDir, { recursive: true });
    const key = randomBytes(32).toString('base64url');
    try {
      await writeFile(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
      this.logger.log(`generated the factory credential key ${path} (back it up with the database)`);
      return key;
    } catch (error) {
      // another process of the same DATA_DIR wrote it first
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return (await readFile(path, 'utf8')).trim();
      throw error;
    }
  }
}
