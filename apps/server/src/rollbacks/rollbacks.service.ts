import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { CommandType, RebootMode, SnapshotInfo, UUID_PATTERN } from '@cowroot/protocol';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { AuditEntryInput, AuditService } from '../audit/audit.service';
import { Actor } from '../auth/actor';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { CommandFilter, DeviceFeed } from '../devices/device-feed';
import { SqlFragment } from '../devices/device-selection';
import { ExecutionState } from '../rollouts/execution-state';
import { RollbackOutcomeLink, RollbackOutcomePort, RollbackTarget } from '../rollouts/rollback-outcome-port';
import { RolloutsService } from '../rollouts/rollouts.service';
import { ROLLOUT_COMMAND_PORT, RolloutCommandPort, StoredCommand } from '../rollouts/rollout-command-port';
import { CreateRollbackDto } from './dto/create-rollback.dto';
import { RollbackDeviceDto, RollbackDto } from './dto/rollback.dto';
import { RollbackStore } from './rollback-store';

export type RollbackDeviceView = RollbackDeviceDto;
export type RollbackView = RollbackDto;

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
 * tracked from its job events (the rollout engine's JobEventFollower, through RollbackOutcomePort) and audited.
 */
@Injectable()
export class RollbacksService implements RollbackOutcomePort, OnModuleInit {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly store: RollbackStore,
    private readonly audit: AuditService,
    @Inject(ROLLOUT_COMMAND_PORT) private readonly commands: RolloutCommandPort,
    private readonly outcomes: RollbackOutcomeLink,
    private readonly devices: DeviceFeed,
    private readonly rollouts: RolloutsService,
  ) {}

  /** Before the engine's first tick (application bootstrap), so no rollback event passes the cursor unread. */
  onModuleInit(): void {
    this.outcomes.attach(this);
  }

  readonly rollbackCommands: CommandFilter = (column) => this.store.commandFilter(column);

  staleRollbackCommands(staleSeconds: number, firstParam: number): SqlFragment {
    return this.store.staleCommands(staleSeconds, firstParam);
  }

  lockRollbackDevicesOf(manager: EntityManager, commandIds: string[]): Promise<RollbackTarget[]> {
    return this.store.lockDevicesOf(manager, commandIds);
  }

  setRollbackDeviceState(
    manager: EntityManager,
    target: { rollbackId: string; deviceId: string },
    state: ExecutionState,
    detail: string | null,
  ): Promise<void> {
    return this.store.setDeviceState(manager, target, state, detail);
  }

  async create(input: CreateRollbackDto, actor: Actor): Promise<RollbackView> {
    const targets = [
      input.deviceId && { type: 'device', value: input.deviceId },
      input.tag && { type: 'tag', value: input.tag },
      input.rolloutId && { type: 'rollout', value: input.rolloutId },
    ].filter(Boolean) as { type: 'device' | 'tag' | 'rollout'; value: string }[];
    if (targets.length !== 1)
      throw new DomainError(DomainErrorCode.RollbackTargetInvalid, 'give exactly one of deviceId, tag or rolloutId');
    const target = targets[0];
    const id = randomUUID();
    const published: StoredCommand[] = [];
    await this.dataSource.transaction(async (manager) => {
      const candidates = await this.candidates(manager, target);
      await this.store.insert(manager, {
        id,
        target_type: target.type,
        target: target.value,
        snapshot: input.snapshot ?? null,
        reason: input.reason ?? null,
        createdBy: actor.id,
        createdByName: actor.name,
      });
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
      await this.store.insertDevices(manager, id, outcomes);
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
    const row = UUID_PATTERN.test(id) ? await this.store.find(this.dataSource.manager, id) : undefined;
    if (!row) throw new DomainError(DomainErrorCode.RollbackNotFound, `rollback ${id} not found`);
    const devices = await this.store.devicesOf(this.dataSource.manager, id);
    return {
      id,
      target: { type: row.target_type, value: row.target },
      snapshot: row.snapshot,
      reason: row.reason,
      createdBy: row.created_by_name,
      createdAt: new Date(row.created_at).toISOString(),
      devices: devices.map((d) => ({
        deviceId: d.device_id,
        snapshot: d.snapshot,
        state: d.state,
        detail: d.detail,
        commandId: d.command_id,
      })),
    };
  }

  /** The devices a target names, through their features: devices by DeviceFeed, a rollout's by RolloutsService. */
  private async candidates(manager: EntityManager, target: { type: string; value: string }): Promise<Candidate[]> {
    const fromRollout =
      target.type === 'rollout'
        ? new Map(
            (await this.rollouts.confirmedDevices(manager, target.value)).map((d) => [d.deviceId, d.fromSnapshot]),
          )
        : null;
    const devices = await this.devices.activeSnapshots(
      manager,
      target.type === 'tag' ? { tag: target.value } : { ids: fromRollout ? [...fromRollout.keys()] : [target.value] },
    );
    if (target.type === 'device' && devices.length === 0)
      throw new DomainError(DomainErrorCode.DeviceNotFound, `active device ${target.value} not found`);
    return devices.map((d) => ({
      device_id: d.id,
      booted_snapshot: d.booted_snapshot,
      snapshots: d.snapshots,
      from_snapshot: fromRollout?.get(d.id) ?? null,
    }));
  }

  /** The newest read-only snapshot other than the booted one. */
  private previousSnapshot(device: Candidate): string | null {
    const others = (device.snapshots ?? []).filter((s) => s.readOnly && s.id !== device.booted_snapshot);
    others.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
    return others[0]?.id ?? null;
  }
}
