import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { CommandType, RebootMode, SnapshotInfo, UUID_PATTERN } from '@cowroot/protocol';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { AuditEntryInput, AuditService } from '../audit/audit.service';
import { Actor } from '../auth/actor';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { DeviceStatus } from '../devices/device.entity';
import { ExecutionState } from '../rollouts/execution-state';
import { ROLLOUT_COMMAND_PORT, RolloutCommandPort, StoredCommand } from '../rollouts/rollout-command-port';
import { CreateRollbackDto } from './dto/create-rollback.dto';

export interface RollbackDeviceView {
  deviceId: string;
  snapshot: string | null;
  /** `skipped` when nothing was sent; else an execution state, moved forward by the device's events */
  state: string;
  detail: string | null;
  commandId: string | null;
}

export interface RollbackView {
  id: string;
  target: { type: string; value: string };
  snapshot: string | null;
  reason: string | null;
  createdBy: string;
  createdAt: string;
  devices: RollbackDeviceView[];
}

interface Candidate {
  device_id: string;
  booted_snapshot: string | null;
  snapshots: SnapshotInfo[] | null;
  /** for a rollout: where the device came from */
  from_snapshot: string | null;
}

const SKIPPED = 'skipped';

/**
 * Remote rollback (docs/rollouts.md "Remote rollback"): one call switches a device, every device with a tag,
 * or a rollout's devices to a snapshot they already hold, without a download. Each device's outcome is
 * tracked from its job events (JobEventFollower) and audited.
 */
@Injectable()
export class RollbacksService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    @Inject(ROLLOUT_COMMAND_PORT) private readonly commands: RolloutCommandPort,
  ) {}

  async create(input: CreateRollbackDto, actor: Actor): Promise<RollbackView> {
    const targets = [
      input.deviceId && { type: 'device', value: input.deviceId },
      input.tag && { type: 'tag', value: input.tag },
      input.rolloutId && { type: 'rollout', value: input.rolloutId },
    ].filter(Boolean) as { type: 'device' | 'tag' | 'rollout'; value: string }[];
    if (targets.length !== 1)
      throw new DomainError(DomainErrorCode.Invalid, 'give exactly one of deviceId, tag or rolloutId');
    const target = targets[0];
    const id = randomUUID();
    const published: StoredCommand[] = [];
    await this.dataSource.transaction(async (manager) => {
      const candidates = await this.candidates(manager, target);
      await manager.query(
        `INSERT INTO rollbacks (id, target_type, target, snapshot, reason, created_by, created_by_name) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [id, target.type, target.value, input.snapshot ?? null, input.reason ?? null, actor.id, actor.name],
      );
      const audit: AuditEntryInput[] = [];
      const outcomes: RollbackDeviceView[] = [];
      const planned = candidates.map((device) => {
        const snapshot = input.snapshot ?? device.from_snapshot ?? this.previousSnapshot(device);
        const held = (device.snapshots ?? []).some((s) => s.id === snapshot);
        const skip = !snapshot
          ? 'no other snapshot on the device'
          : !held
            ? `snapshot ${snapshot} is not on the device`
            : snapshot === device.booted_snapshot
              ? 'already running it'
              : null;
        return { device, snapshot, skip };
      });
      const sendable = planned.filter((p) => p.skip === null);
      const commands = await this.commands.recordMany(
        manager,
        sendable.map((p) => ({
          deviceId: p.device.device_id,
          request: { type: CommandType.Switch, snapshot: p.snapshot!, reboot: { mode: RebootMode.Now } },
        })),
        actor,
      );
      published.push(...commands);
      const commandOf = new Map(sendable.map((p, i) => [p.device.device_id, commands[i]]));
      for (const { device, snapshot, skip } of planned) {
        const command = commandOf.get(device.device_id) ?? null;
        const outcome: RollbackDeviceView = command
          ? {
              deviceId: device.device_id,
              snapshot,
              state: ExecutionState.Notified,
              detail: null,
              commandId: command.id,
            }
          : { deviceId: device.device_id, snapshot, state: SKIPPED, detail: skip, commandId: null };
        outcomes.push(outcome);
        audit.push({
          actor,
          action: outcome.commandId ? 'rollback.device.sent' : 'rollback.device.skipped',
          subjectType: 'device',
          subjectId: device.device_id,
          after: {
            rollbackId: id,
            snapshot: outcome.snapshot,
            commandId: outcome.commandId,
            from: device.booted_snapshot,
          },
          reason: outcome.detail ?? input.reason,
        });
      }
      if (outcomes.length > 0) {
        await manager.query(
          `INSERT INTO rollback_devices (rollback_id, device_id, snapshot, command_id, state, detail)
           SELECT $1, u.device_id, u.snapshot, u.command_id, u.state, u.detail
             FROM unnest($2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[]) AS u(device_id, snapshot, command_id, state, detail)`,
          [
            id,
            outcomes.map((o) => o.deviceId),
            outcomes.map((o) => o.snapshot),
            outcomes.map((o) => o.commandId),
            outcomes.map((o) => o.state),
            outcomes.map((o) => o.detail),
          ],
        );
      }
      audit.unshift({
        actor,
        action: 'rollback.requested',
        subjectType: target.type === 'rollout' ? 'rollout' : 'rollback',
        subjectId: target.type === 'rollout' ? target.value : id,
        after: {
          rollbackId: id,
          target,
          snapshot: input.snapshot ?? null,
          devices: outcomes.length,
          sent: published.length,
        },
        reason: input.reason,
      });
      await this.audit.recordMany(audit, manager);
    });
    if (published.length > 0) await this.commands.publishMany(published).catch(() => undefined);
    return this.get(id);
  }

  async get(id: string): Promise<RollbackView> {
    const rows = UUID_PATTERN.test(id)
      ? ((await this.dataSource.query(`SELECT * FROM rollbacks WHERE id = $1`, [id])) as Record<string, unknown>[])
      : [];
    if (rows.length === 0) throw new DomainError(DomainErrorCode.NotFound, `rollback ${id} not found`);
    const devices = (await this.dataSource.query(
      `SELECT device_id, snapshot, state, detail, command_id FROM rollback_devices WHERE rollback_id = $1 ORDER BY device_id`,
      [id],
    )) as {
      device_id: string;
      snapshot: string | null;
      state: string;
      detail: string | null;
      command_id: string | null;
    }[];
    const row = rows[0];
    return {
      id,
      target: { type: row.target_type as string, value: row.target as string },
      snapshot: row.snapshot as string | null,
      reason: row.reason as string | null,
      createdBy: row.created_by_name as string,
      createdAt: new Date(row.created_at as string).toISOString(),
      devices: devices.map((d) => ({
        deviceId: d.device_id,
        snapshot: d.snapshot,
        state: d.state,
        detail: d.detail,
        commandId: d.command_id,
      })),
    };
  }

  private async candidates(manager: EntityManager, target: { type: string; value: string }): Promise<Candidate[]> {
    const columns = `d.id AS device_id, d.booted_snapshot, d.snapshots`;
    if (target.type === 'device') {
      const rows = (await manager.query(
        `SELECT ${columns}, NULL AS from_snapshot FROM devices d WHERE d.id = $1 AND d.status = '${DeviceStatus.Active}'`,
        [target.value],
      )) as Candidate[];
      if (rows.length === 0) throw new DomainError(DomainErrorCode.NotFound, `active device ${target.value} not found`);
      return rows;
    }
    if (target.type === 'tag') {
      return (await manager.query(
        `SELECT ${columns}, NULL AS from_snapshot FROM devices d WHERE d.tags @> ARRAY[$1]::text[] AND d.status = '${DeviceStatus.Active}' ORDER BY d.id`,
        [target.value],
      )) as Candidate[];
    }
    const rollout = (await manager.query(`SELECT id FROM rollouts WHERE id = $1`, [target.value])) as unknown[];
    if (rollout.length === 0) throw new DomainError(DomainErrorCode.NotFound, `rollout ${target.value} not found`);
    return (await manager.query(
      `SELECT ${columns}, x.from_snapshot FROM rollout_executions x JOIN devices d ON d.id = x.device_id
        WHERE x.rollout_id = $1 AND x.state = $2 AND d.status = '${DeviceStatus.Active}' ORDER BY d.id`,
      [target.value, ExecutionState.Confirmed],
    )) as Candidate[];
  }

  /** The newest read-only snapshot other than the booted one. */
  private previousSnapshot(device: Candidate): string | null {
    const others = (device.snapshots ?? []).filter((s) => s.readOnly && s.id !== device.booted_snapshot);
    others.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
    return others[0]?.id ?? null;
  }
}
