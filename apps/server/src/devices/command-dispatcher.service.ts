import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
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
import { BrokerRegistry } from '../broker/broker-registry.service';
import { DEVICE_BROKER, DeviceBroker } from '../broker/device-broker';
import { CommandStatus, UNDELIVERED_STATUSES } from './command-status';
import { DeviceCommand } from './device-command.entity';
import { Device, DeviceStatus } from './device.entity';
import { GroupCommit } from './group-commit';

/** How often queued commands of devices connected to this instance are looked for. */
const QUEUED_POLL_MS = 2000;

/** Publishes in flight at once in publishMany(). */
const PUBLISH_CHUNK = 500;

/** resendUndelivered(recentToo): how far back a finished command is sent again. */
const RECENT_RESEND_SECONDS = 600;

/** Commands per INSERT statement in recordMany(). */
const INSERT_CHUNK = 1000;

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
export class CommandDispatcher implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(CommandDispatcher.name);
  private poller: NodeJS.Timeout | null = null;
  /** resendUndelivered's lookups of one turn (a reconnect storm's SUBSCRIBEs) in one query */
  private readonly undelivered = new GroupCommit<{ deviceId: string; recentToo: boolean }, DeviceCommand[]>({
    logger: this.logger,
    noun: 'undelivered-command lookup',
    label: (request) => `deviceId=${request.deviceId}`,
    write: (requests) => this.findUndelivered(requests),
  });

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    @Inject(DEVICE_BROKER) private readonly broker: DeviceBroker,
    private readonly registry: BrokerRegistry,
  ) {}

  onModuleInit(): void {
    this.broker.onResendNeeded((deviceId, recentToo) => {
      this.resendUndelivered(deviceId, recentToo).catch((error: Error) =>
        this.logger.error(`deviceId=${deviceId} resending commands failed: ${error.message}`),
      );
    });
  }

  onApplicationBootstrap(): void {
    this.poller = setInterval(() => {
      this.deliverQueued().catch((error: Error) =>
        this.logger.error(`delivering queued commands failed: ${error.message}`),
      );
    }, QUEUED_POLL_MS);
    this.poller.unref();
  }

  onModuleDestroy(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  }

  /**
   * Publishes queued commands of devices whose session is on this server instance: commands recorded on
   * another replica (whose broker could not reach the device), or whose publish was lost in a crash
   * between commit and publish. Younger commands are left to the publish that follows their commit.
   */
  async deliverQueued(): Promise<number> {
    if (!this.broker.isListening()) return 0;
    if (this.broker.queuesForOfflineDevices) return this.deliverQueuedAnywhere();
    const queued = await this.dataSource
      .getRepository(DeviceCommand)
      .createQueryBuilder('c')
      .innerJoin(Device, 'd', 'd.id = c.device_id')
      .where('c.status = :queued', { queued: CommandStatus.Queued })
      .andWhere('d.online AND d.session_broker = :me', { me: this.registry.id })
      .andWhere(`c.created_at < now() - interval '2 seconds'`)
      .orderBy('c.created_at', 'ASC')
      .limit(1000)
      .getMany();
    const local = queued.filter((command) => this.broker.isConnected(command.deviceId));
    return local.length > 0 ? this.publishMany(local) : 0;
  }

  /**
   * The broker keeps commands of offline devices (NATS): every queued command is published, online or not.
   * The rows are locked SKIP LOCKED while they go out, so two replicas polling at once send each once.
   */
  private deliverQueuedAnywhere(): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const rows: Array<{ id: string }> = await manager.query(
        `SELECT id FROM device_commands WHERE status = $1 AND created_at < now() - interval '2 seconds'
          ORDER BY created_at LIMIT 1000 FOR UPDATE SKIP LOCKED`,
        [CommandStatus.Queued],
      );
      if (rows.length === 0) return 0;
      const commands = await manager
        .getRepository(DeviceCommand)
        .createQueryBuilder('c')
        .where('c.id = ANY(:ids)', { ids: rows.map((row) => row.id) })
        .orderBy('c.created_at', 'ASC')
        .getMany();
      return this.publishMany(commands, manager);
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
  async record(
    manager: EntityManager,
    deviceId: string,
    request: CommandRequest,
    actor: Actor,
  ): Promise<DeviceCommand> {
    const [command] = await this.recordMany(manager, [{ deviceId, request }], actor);
    return command;
  }

  /**
   * record() for many devices with a fixed number of statements (a rollout wave): one lock query, one
   * INSERT per 1000 commands, chunked audit inserts. All or nothing with the caller's transaction.
   */
  async recordMany(
    manager: EntityManager,
    items: Array<{ deviceId: string; request: CommandRequest }>,
    actor: Actor,
  ): Promise<DeviceCommand[]> {
    if (items.length === 0) return [];
    const ids = [...new Set(items.map((item) => item.deviceId))].filter((id) => isDeviceId(id)).sort();
    // FOR SHARE: a concurrent decommission waits for these commands, or these commands see it
    const devices: Array<{ id: string; status: DeviceStatus }> = await manager.query(
      'SELECT id, status FROM devices WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE',
      [ids],
    );
    const statusOf = new Map(devices.map((device) => [device.id, device.status]));
    const now = new Date();
    // a wave sends one or a few distinct requests: each is validated once, every command gets its own id
    const validated = new Map<string, Record<string, unknown>>();
    const envelopeOf = (request: CommandRequest): Record<string, unknown> => {
      const key = JSON.stringify(request);
      let message = validated.get(key);
      if (!message) validated.set(key, (message = this.envelope(request, now)));
      return { ...message, commandId: randomUUID() };
    };
    const commands = items.map(({ deviceId, request }) => {
      const status = statusOf.get(deviceId);
      if (status === undefined) throw new DomainError(DomainErrorCode.DeviceNotFound, `device ${deviceId} not found`);
      if (status !== DeviceStatus.Active)
        throw new DomainError(DomainErrorCode.DeviceDecommissioned, `device ${deviceId} is decommissioned`);
      const message = envelopeOf(request);
      return manager.create(DeviceCommand, {
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
    });
    await this.checkCancelTargets(manager, items);
    for (let i = 0; i < commands.length; i += INSERT_CHUNK) {
      const rows = commands.slice(i, i + INSERT_CHUNK).map((command) => ({
        id: command.id,
        device_id: command.deviceId,
        type: command.type,
        payload: command.payload,
      }));
      await manager.query(
        `INSERT INTO device_commands (id, device_id, type, payload, status, created_by, created_by_type, created_at, updated_at)
         SELECT r.id, r.device_id, r.type, r.payload, $2, $3, $4, $5, $5
           FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, device_id text, type text, payload jsonb)`,
        [JSON.stringify(rows), CommandStatus.Queued, actor.id, actor.type, now],
      );
    }
    await this.audit.recordMany(
      commands.map((command) => ({
        actor,
        action: 'device.command.sent',
        subjectType: 'device',
        subjectId: command.deviceId,
        after: { commandId: command.id, type: command.type, command: command.payload },
      })),
      manager,
    );
    return commands;
  }

  /** Adds the envelope and validates against the protocol's class for the type: 400 when it does not fit. */
  private envelope(request: CommandRequest, issuedAt: Date): Record<string, unknown> {
    const message = JSON.parse(
      JSON.stringify({ ...request, v: PROTOCOL_VERSION, commandId: randomUUID(), issuedAt: issuedAt.toISOString() }),
    ) as Record<string, unknown>;
    const commandClass = COMMAND_CLASSES[request.type as CommandType];
    const checked = commandClass ? validateAs<Command>(commandClass as new () => Command, message) : null;
    if (!checked?.ok) {
      throw new DomainError(
        DomainErrorCode.CommandInvalid,
        `invalid ${request.type} command: ${checked?.message ?? 'unknown type'}`,
      );
    }
    return message;
  }

  /** A cancel must name a command of the same device. */
  private async checkCancelTargets(
    manager: EntityManager,
    items: Array<{ deviceId: string; request: CommandRequest }>,
  ): Promise<void> {
    const cancels = items.flatMap(({ deviceId, request }) =>
      request.type === CommandType.Cancel ? [{ deviceId, target: request.targetCommandId }] : [],
    );
    if (cancels.length === 0) return;
    const found: Array<{ id: string; device_id: string }> = await manager.query(
      'SELECT id, device_id FROM device_commands WHERE id = ANY($1::uuid[])',
      [cancels.map((cancel) => cancel.target)],
    );
    const owner = new Map(found.map((row) => [row.id, row.device_id]));
    const missing = cancels.find((cancel) => owner.get(cancel.target) !== cancel.deviceId);
    if (missing)
      throw new DomainError(
        DomainErrorCode.CommandNotFound,
        `command ${missing.target} of device ${missing.deviceId} not found`,
      );
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

  /**
   * publish() for many stored commands (after the recording transaction committed): every message goes out
   * through the broker, and one UPDATE per chunk marks those whose device had a live session as `sent`.
   */
  async publishMany(commands: DeviceCommand[], manager: EntityManager = this.dataSource.manager): Promise<number> {
    let delivered = 0;
    // issued in order (aedes keeps the order of publish calls), awaited per chunk rather than one by one;
    // each chunk is marked `sent` as soon as it is out, so the queued-command poll does not send it again
    for (let i = 0; i < commands.length; i += PUBLISH_CHUNK) {
      const chunk = commands.slice(i, i + PUBLISH_CHUNK);
      const sent = await Promise.all(
        chunk.map((command) => this.broker.publishCommand(command.deviceId, encodeMessage(command.payload))),
      );
      const ids = chunk.filter((_, j) => sent[j]).map((command) => command.id);
      if (ids.length === 0) continue;
      await manager.query(
        `UPDATE device_commands SET status = $2, updated_at = now() WHERE id = ANY($1::uuid[]) AND status = $3`,
        [ids, CommandStatus.Sent, CommandStatus.Queued],
      );
      delivered += ids.length;
    }
    return delivered;
  }

  /** Publishes, oldest first, every command of the device that it has not acknowledged yet. */
  async resendUndelivered(deviceId: string, recentToo = false): Promise<number> {
    const pending = await this.undelivered.submit({ deviceId, recentToo });
    for (const command of pending) await this.publish(command);
    if (pending.length > 0) this.logger.log(`deviceId=${deviceId} re-sent ${pending.length} unacknowledged command(s)`);
    return pending.length;
  }

  /**
   * For each request, the device's commands oldest first: those not acknowledged yet, and with recentToo (a
   * broker lost reports) also those updated lately, which the device re-reports.
   */
  private async findUndelivered(requests: Array<{ deviceId: string; recentToo: boolean }>): Promise<DeviceCommand[][]> {
    const ids = [...new Set(requests.map((request) => request.deviceId))];
    const recent = [...new Set(requests.filter((request) => request.recentToo).map((request) => request.deviceId))];
    const commands = await this.dataSource
      .getRepository(DeviceCommand)
      .createQueryBuilder('c')
      .where('c.device_id = ANY(:ids)', { ids })
      .andWhere(
        `(c.status IN (:...statuses) OR (c.device_id = ANY(:recent) AND c.updated_at > now() - make_interval(secs => :secs)))`,
        { statuses: UNDELIVERED_STATUSES, recent, secs: RECENT_RESEND_SECONDS },
      )
      .orderBy('c.created_at', 'ASC')
      .getMany();
    const byDevice = new Map<string, DeviceCommand[]>();
    for (const command of commands)
      byDevice.set(command.deviceId, [...(byDevice.get(command.deviceId) ?? []), command]);
    const undelivered = new Set<string>(UNDELIVERED_STATUSES);
    return requests.map(({ deviceId, recentToo }) =>
      (byDevice.get(deviceId) ?? []).filter((command) => recentToo || undelivered.has(command.status)),
    );
  }
}
