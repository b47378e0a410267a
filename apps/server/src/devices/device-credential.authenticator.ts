import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { isDeviceId } from '@cowroot/protocol';
import { DataSource } from 'typeorm';
import { CredentialCheck, DeviceAuthenticator } from '../auth/device-authenticator';
import { verifySecret } from '../auth/secrets';
import { DeviceStatus } from './device.entity';
import { FACTORY_HASH_PREFIX, FactoryCredentialHasher } from './factory-credential-hasher';
import { GroupCommit } from './group-commit';

/** What the server generates (generateSecret('cwd_')): 256 random bits, safe under a plain sha256. */
const GENERATED_CREDENTIAL = /^cwd_[A-Za-z0-9_-]{43}$/;

interface StoredCredential {
  id: string;
  status: DeviceStatus;
  credential_hash: string | null;
}

/**
 * Checks a device's credential, for MQTT CONNECT and for HTTP routes marked @AllowDevices. The rows of
 * concurrent checks are read with one query (GroupCommit): a reconnect storm's CONNECTs of one turn cost one
 * round trip, not one each.
 */
@Injectable()
export class DeviceCredentialAuthenticator implements DeviceAuthenticator {
  private readonly logger = new Logger(DeviceCredentialAuthenticator.name);
  private readonly lookups = new GroupCommit<string, StoredCredential | undefined>({
    logger: this.logger,
    noun: 'credential lookup',
    label: (deviceId) => `deviceId=${deviceId}`,
    write: async (deviceIds) => {
      const rows: StoredCredential[] = await this.dataSource.query(
        'SELECT id, status, credential_hash FROM devices WHERE id = ANY($1::text[])',
        [[...new Set(deviceIds)]],
      );
      const byId = new Map(rows.map((row) => [row.id, row]));
      return deviceIds.map((deviceId) => byId.get(deviceId));
    },
  });

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly factory: FactoryCredentialHasher,
  ) {}

  async check(deviceId: string, secret: string): Promise<CredentialCheck> {
    if (!isDeviceId(deviceId)) return 'unknown';
    const row = await this.lookups.submit(deviceId);
    if (!row) return 'unknown';
    const stored = row.credential_hash;
    if (row.status !== DeviceStatus.Active || stored === null) return 'decommissioned';
    if (stored.startsWith(FACTORY_HASH_PREFIX)) return this.factory.verify(deviceId, secret, stored) ? 'ok' : 'wrong';
    if (!verifySecret(secret, stored)) return 'wrong';
    // a factory credential provisioned before keyed hashing (a plain sha256): upgraded on its first login
    if (!GENERATED_CREDENTIAL.test(secret)) await this.upgrade(deviceId, secret, stored);
    return 'ok';
  }

  private async upgrade(deviceId: string, secret: string, legacy: string): Promise<void> {
    try {
      await this.dataSource.query('UPDATE devices SET credential_hash = $1 WHERE id = $2 AND credential_hash = $3', [
        this.factory.hash(deviceId, secret),
        deviceId,
        legacy,
      ]);
    } catch (error) {
      this.logger.warn(`deviceId=${deviceId} could not upgrade the credential hash: ${(error as Error).message}`);
    }
  }
}
