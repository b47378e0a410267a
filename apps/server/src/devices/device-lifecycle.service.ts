import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { isDeviceId } from '@cowroot/protocol';
import { DataSource, EntityManager } from 'typeorm';
import { Actor } from '../auth/actor';
import { AuditService } from '../audit/audit.service';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { DEVICE_BROKER, DeviceBroker } from '../broker/device-broker';
import { CommandStatus, UNDELIVERED_STATUSES } from './command-status';
import { Device, DeviceStatus } from './device.entity';
import { normaliseTags } from './device-rules';
import { returningRows } from '../database/returning-rows';

/** Operator changes to a device after provisioning: tags, and the end of its life. */
@Injectable()
export class DeviceLifecycleService {
  private readonly logger = new Logger(DeviceLifecycleService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    @Inject(DEVICE_BROKER) private readonly broker: DeviceBroker,
  ) {}

  async setTags(id: string, tags: string[], actor: Actor): Promise<Device> {
    return this.dataSource.transaction(async (manager) => {
      const device = await this.lock(manager, id);
      const next = normaliseTags(tags);
      if (JSON.stringify(next) === JSON.stringify(device.tags)) return device;
      await manager.update(Device, { id }, { tags: next, updatedAt: new Date() });
      await this.audit.record(
        {
          actor,
          action: 'device.tags-changed',
          subjectType: 'device',
          subjectId: id,
          before: device.tags,
          after: next,
        },
        manager,
      );
      return manager.findOneByOrFail(Device, { id });
    });
  }

  /**
   * Revokes the credential (later connects are refused), cancels commands the device never acknowledged,
   * and closes its MQTT session. The row stays for the audit trail.
   */
  async decommission(id: string, reason: string, actor: Actor): Promise<Device> {
    const device = await this.dataSource.transaction(async (manager) => {
      const current = await this.lock(manager, id);
      if (current.status === DeviceStatus.Decommissioned) {
        throw new DomainError(DomainErrorCode.DeviceDecommissioned, `device ${id} is already decommissioned`);
      }
      const now = new Date();
      // offline here: the session is closed below, and presence writes skip decommissioned devices
      await manager.query(
        `UPDATE devices SET status = $2, credential_hash = NULL, decommissioned_at = $3, decommission_reason = $4,
                online = false, session_broker = NULL, updated_at = $3
          WHERE id = $1`,
        [id, DeviceStatus.Decommissioned, now, reason],
      );
      const canceled = await returningRows<{ id: string }>(
        manager,
        `UPDATE device_commands SET status = $2, updated_at = now() WHERE device_id = $1 AND status = ANY($3::text[]) RETURNING id`,
        [id, CommandStatus.Canceled, UNDELIVERED_STATUSES],
      );
      await this.audit.record(
        {
          actor,
          action: 'device.decommissioned',
          subjectType: 'device',
          subjectId: id,
          before: { status: current.status, tags: current.tags, online: current.online },
          after: { status: DeviceStatus.Decommissioned, canceledCommands: canceled.map((row) => row.id) },
          reason,
        },
        manager,
      );
      return manager.findOneByOrFail(Device, { id });
    });
    // after the commit, so a reconnect attempt already finds the credential revoked
    if (await this.broker.disconnectDevice(id)) this.logger.log(`deviceId=${id} decommissioned: MQTT access ended`);
    return device;
  }

  private async lock(manager: EntityManager, id: string): Promise<Device> {
    const device = isDeviceId(id)
      ? await manager.getRepository(Device).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } })
      : null;
    if (!device) throw new DomainError(DomainErrorCode.DeviceNotFound, `device ${id} not found`);
    return device;
  }
}
