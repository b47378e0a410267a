import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { isUniqueViolation } from '../database/unique-violation';
import { Actor } from '../auth/actor';
import { generateSecret, hashSecret } from '../auth/secrets';
import { AuditService } from '../audit/audit.service';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { BulkDeviceList, BulkRowError } from './bulk-device-list';
import { Device } from './device.entity';
import { FactoryCredentialHasher } from './factory-credential-hasher';
import { normaliseTags } from './device-rules';

export interface ProvisionedDevice {
  device: Device;
  credential: string;
}

export interface BulkProvisionResult {
  created: number;
  /** a credential only for devices whose credential the server generated */
  devices: Array<{ id: string; credential?: string }>;
}

/** Rows per INSERT statement in bulk provisioning. */
const INSERT_CHUNK = 1000;

/** Creates devices with their credentials: one at a time, or a whole pre-authorised list all-or-nothing. */
@Injectable()
export class DeviceProvisioningService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly factory: FactoryCredentialHasher,
  ) {}

  /** The credential is returned here and never again: only its hash is stored. */
  async provision(id: string, tags: string[], actor: Actor): Promise<ProvisionedDevice> {
    const credential = generateSecret('cwd_');
    try {
      const device = await this.dataSource.transaction(async (manager) => {
        await this.insert(manager, [{ id, tags: normaliseTags(tags), credentialHash: hashSecret(credential) }], actor);
        return manager.findOneByOrFail(Device, { id });
      });
      return { device, credential };
    } catch (error) {
      if (isUniqueViolation(error)) throw new DomainError(DomainErrorCode.DeviceExists, `device ${id} already exists`);
      throw error;
    }
  }

  /**
   * All or nothing: a list with any bad row (parse errors, ids already provisioned) creates no device and
   * fails with every bad row listed (422). Given (factory) credentials are stored under the server's keyed
   * hash (FactoryCredentialHasher); the others are generated, 256 random bits under sha256.
   */
  async provisionBulk(list: BulkDeviceList, actor: Actor): Promise<BulkProvisionResult> {
    if (list.errors.length > 0) throw this.rowsInvalid(list.errors);
    const generated = new Map<string, string>();
    const rows = list.rows.map((row) => {
      if (row.credential !== undefined) {
        return { id: row.id, tags: row.tags, credentialHash: this.factory.hash(row.id, row.credential) };
      }
      const credential = generateSecret('cwd_');
      generated.set(row.id, credential);
      return { id: row.id, tags: row.tags, credentialHash: hashSecret(credential) };
    });
    try {
      await this.dataSource.transaction(async (manager) => {
        const existing: Array<{ id: string }> = await manager.query(
          'SELECT id FROM devices WHERE id = ANY($1::text[])',
          [rows.map((row) => row.id)],
        );
        if (existing.length > 0) {
          const taken = new Set(existing.map((row) => row.id));
          throw this.rowsInvalid(
            list.rows
              .filter((row) => taken.has(row.id))
              .map((row) => ({ line: row.line, id: row.id, reason: 'already provisioned' })),
          );
        }
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          await this.insert(manager, rows.slice(i, i + INSERT_CHUNK), actor, 'bulk provisioning');
        }
      });
    } catch (error) {
      // a device provisioned concurrently between the check and the insert
      if (isUniqueViolation(error))
        throw new DomainError(DomainErrorCode.DeviceExists, 'a device of the list was provisioned meanwhile; retry');
      throw error;
    }
    return { created: rows.length, devices: rows.map((row) => ({ id: row.id, credential: generated.get(row.id) })) };
  }

  private async insert(
    manager: EntityManager,
    rows: Array<{ id: string; tags: string[]; credentialHash: string }>,
    actor: Actor,
    reason?: string,
  ): Promise<void> {
    await manager.query(
      `INSERT INTO devices (id, tags, credential_hash, provisioned_by)
       SELECT r.id, r.tags, r.credential_hash, $2 FROM jsonb_to_recordset($1::jsonb) AS r(id text, tags text[], credential_hash text)`,
      [
        JSON.stringify(rows.map((row) => ({ id: row.id, tags: row.tags, credential_hash: row.credentialHash }))),
        actor.id,
      ],
    );
    await this.audit.recordMany(
      rows.map((row) => ({
        actor,
        action: 'device.provisioned',
        subjectType: 'device',
        subjectId: row.id,
        after: { id: row.id, tags: row.tags },
        reason,
      })),
      manager,
    );
  }

  private rowsInvalid(errors: BulkRowError[]): DomainError {
    const sorted = [...errors].sort((a, b) => a.line - b.line);
    return new DomainError(
      DomainErrorCode.DeviceListInvalid,
      `${sorted.length} row(s) of the device list are invalid; nothing was provisioned`,
      {
        rows: sorted,
      },
    );
  }
}
