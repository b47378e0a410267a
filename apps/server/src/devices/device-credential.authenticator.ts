import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { isDeviceId } from '@cowroot/protocol';
import { DataSource } from 'typeorm';
import { CredentialCheck, DeviceAuthenticator } from '../auth/device-authenticator';
import { verifySecret } from '../auth/secrets';
import { DeviceStatus } from './device.entity';

/** Checks a device's credential, for MQTT CONNECT and for HTTP routes marked @AllowDevices. */
@Injectable()
export class DeviceCredentialAuthenticator implements DeviceAuthenticator {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async check(deviceId: string, secret: string): Promise<CredentialCheck> {
    if (!isDeviceId(deviceId)) return 'unknown';
    const rows: Array<{ status: DeviceStatus; credential_hash: string | null }> = await this.dataSource.query(
      'SELECT status, credential_hash FROM devices WHERE id = $1',
      [deviceId],
    );
    const row = rows[0];
    if (!row) return 'unknown';
    if (row.status !== DeviceStatus.Active || row.credential_hash === null) return 'decommissioned';
    return verifySecret(secret, row.credential_hash) ? 'ok' : 'wrong';
  }
}
