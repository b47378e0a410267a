import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  COMMAND_CLASSES,
  Command,
  CommandType,
  PROTOCOL_VERSION,
  encodeMessage,
  isDeviceId,
  validateAs,
} from '@cowroot/protocol';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { Actor } from '../auth/actor';
import { AuditService } from '../audit/audit.service';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { MqttBrokerService } from '../mqtt/mqtt-broker.service';
import { CommandStatus, UNDELIVERED_STATUSES } from './command-status';
import { DeviceCommand } from './device-command.entity';
import { DeviceStatus } from './device.entity';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A protocol command without its envelope: the dispatcher adds v, commandId and issuedAt. */
export type CommandRequest = DistributiveOmit<Command, 'v' | 'commandId' | 'issuedAt'>;

/**
 * The one way commands reach devices (REST, releases, rollouts): validate against the protocol classes,
 * store with a fresh commandId, audit, publish QoS 1. Commands the device has not acknowledged are
 * published again whenever it subscribes to its commands topic, so a device that was offline, or a
 * broker restart, loses nothing; the agent executes a commandId at most once.
 */
@Injectable()
export class CommandDispatcher implements OnModuleInit {
  private readonly logger = new Logger(CommandDispatcher.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly broker: MqttBrokerService,
  ) {}

  onModuleInit(): void {
    this.broker.onCommandsSubscribed((deviceId) => {
      this.resendUndelivered(deviceId).catch((error: Error) =>
        this.logger.error(`deviceId=${deviceId} resending commands failed: ${error.message}`),
      );
    });
  }

  /** Stores, audits and publishes one command. 404 unknown device, 409 decommissioned, 400 invalid command. */
  async dispatch(deviceId: string, request: CommandRequest, actor: Actor): Promise<DeviceCommand> {
    const command = await this.dataSource.transaction((manager) => this.record(manager, deviceId, request, actor));
    return this.publish(command);
  }

  /**
   * Stores and audits a command inside the caller's transaction (status `queued`). Call publish() once that
   * transaction has committed; if the process dies in between, the next subscribe of the device sends it.
   */
  async record(manager: EntityManager, deviceId: string, request: CommandRequest, actor: Actor): Promise<DeviceCommand> {
    // FOR SHARE: a concurrent decommission waits for this command, or this command sees it
    const devices: Array<{ status: DeviceStatus }> = isDeviceId(deviceId)
      ? await manager.query('SELECT status FROM devices WHERE id = $1 FOR SHARE', [deviceId])
      : [];
    if (devices.length === 0) throw new DomainError(DomainErrorCode.NotFound, `device ${deviceId} not found`);
    if (devices[0].status !== DeviceStatus.Active) {
      throw new DomainError(DomainErrorCode.Conflict, `device ${deviceId} is decommissioned`);
    }
    const message = JSON.parse(
      JSON.stringify({ ...request, v: PROTOCOL_VERSION, commandId: randomUUID(), issuedAt: new Date().toISOString() }),
    ) as Record<string, unknown>;
    const commandClass = COMMAND_CLASSES[request.type as CommandType];
    const checked = commandClass ? validateAs<Command>(commandClass as new () => Command, message) : null;
    if (!checked?.ok) {
      throw new DomainError(DomainErrorCode.Invalid, `invalid ${request.type} command: ${checked?.message ?? 'unknown type'}`);
    }
    if (request.type === CommandType.Cancel) {
      const target = await manager.query('SELECT 1 FROM device_commands WHERE id = $1 AND device_id = $2', [
        request.targetCommandId,
        deviceId,
      ]);
      if (target.length === 0) {
        throw new DomainError(DomainErrorCode.NotFound, `command ${request.targetCommandId} of device ${deviceId} not found`);
      }
    }
    const now = new Date();
    const command = manager.create(DeviceCommand, {
      id: message.commandId as string,
      deviceId,
      type: request.type,
      payload: message,
      status: CommandStatus.Queued,
      createdBy: actor.id,
      createdByType: actor.type,
      createdAt: now,
      updatedAt: now,
      lastEvent: null,
    });
    await manager.query(
      `INSERT INTO device_commands (id, device_id, type, payload, status, created_by, created_by_type, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
      [command.id, deviceId, command.type, message, command.status, actor.id, actor.type, now],
    );
    await this.audit.record(
      {
        actor,
        action: 'device.command.sent',
        subjectType: 'device',
        subjectId: deviceId,
        after: { commandId: command.id, type: command.type, command: message },
      },
      manager,
    );
    return command;
  }

  /** Publishes a stored command (QoS 1); `queued` becomes `sent` when the device has a live session. */
  async publish(command: DeviceCommand): Promise<DeviceCommand> {
    const delivered = await this.broker.publishCommand(command.deviceId, encodeMessage(command.payload));
    if (delivered && command.status === CommandStatus.Queued) {
      await this.dataSource.query(
        `UPDATE device_commands SET status = $2, updated_at = now() WHERE id = $1 AND status = $3`,
        [command.id, CommandStatus.Sent, CommandStatus.Queued],
      );
      return this.dataSource.getRepository(DeviceCommand).findOneByOrFail({ id: command.id });
    }
    return command;
  }

  /** Publishes, oldest first, every command of the device that it has not acknowledged yet. */
  async resendUndelivered(deviceId: string): Promise<number> {
    const pending = await this.dataSource
      .getRepository(DeviceCommand)
      .createQueryBuilder('c')
      .where('c.device_id = :deviceId AND c.status IN (:...statuses)', { deviceId, statuses: UNDELIVERED_STATUSES })
      .orderBy('c.created_at', 'ASC')
      .getMany();
    for (const command of pending) await this.publish(command);
    if (pending.length > 0) this.logger.log(`deviceId=${deviceId} re-sent ${pending.length} unacknowledged command(s)`);
    return pending.length;
  }
}
