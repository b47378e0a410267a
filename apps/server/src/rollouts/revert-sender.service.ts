import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { CommandType, RebootMode } from '@cowroot/protocol';
import { DataSource } from 'typeorm';
import { AuditEntryInput, AuditService } from '../audit/audit.service';
import { DeviceStatus } from '../devices/device.entity';
import { ROLLOUT_ENGINE_ACTOR } from './engine-actor';
import { ExecutionState } from './execution-state';
import { ExecutionsRepository } from './executions.repository';
import { ROLLOUT_COMMAND_PORT, RolloutCommandPort, StoredCommand } from './rollout-command-port';

/**
 * An aborted rollout's revert (docs/rollouts.md "Abort rules", action `revert`): a `switch` back to the
 * snapshot each confirmed device came from, no download. Commands, execution updates, history and audit
 * commit together; publishing follows the commit.
 */
@Injectable()
export class RevertSender {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly executions: ExecutionsRepository,
    private readonly audit: AuditService,
    @Inject(ROLLOUT_COMMAND_PORT) private readonly commands: RolloutCommandPort,
  ) {}

  /** Revert rule: every device that confirmed this release in this rollout switches back to where it came from. */
  async sendReverts(rolloutId: string): Promise<void> {
    let published: StoredCommand[] = [];
    await this.dataSource.transaction(async (manager) => {
      const rows = await this.executions.lockRevertCandidates(manager, rolloutId);
      if (rows.length === 0) return;
      const failureOf = (row: (typeof rows)[number]) =>
        row.device_status !== DeviceStatus.Active
          ? 'the device is decommissioned'
          : row.from_snapshot
            ? null
            : 'the snapshot the device came from is unknown';
      const switchable = rows.filter((row) => failureOf(row) === null);
      const commands = await this.commands.recordMany(
        manager,
        switchable.map((row) => ({
          deviceId: row.device_id,
          request: { type: CommandType.Switch, snapshot: row.from_snapshot!, reboot: { mode: RebootMode.Now } },
        })),
        ROLLOUT_ENGINE_ACTOR,
      );
      const commandOf = new Map(switchable.map((row, i) => [row.id, commands[i]]));
      const audit: AuditEntryInput[] = [];
      for (const row of rows) {
        const command = commandOf.get(row.id) ?? null;
        const failure = failureOf(row);
        await this.executions.setRevert(
          manager,
          row.id,
          command?.id ?? null,
          command ? ExecutionState.Notified : ExecutionState.Failed,
        );
        await this.executions.recordHistory(manager, [
          {
            executionId: row.id,
            attempt: row.attempt,
            from: ExecutionState.Confirmed,
            to: ExecutionState.Confirmed,
            commandId: command?.id ?? null,
            detail: { revert: command ? 'sent' : 'impossible', toSnapshot: row.from_snapshot, reason: failure },
          },
        ]);
        audit.push({
          actor: ROLLOUT_ENGINE_ACTOR,
          action: command ? 'rollout.execution.revert-sent' : 'rollout.execution.revert-failed',
          subjectType: 'device',
          subjectId: row.device_id,
          after: { rolloutId, executionId: row.id, commandId: command?.id ?? null, toSnapshot: row.from_snapshot },
          reason: failure ?? 'rollout aborted by a revert rule: switching back without a download',
        });
      }
      await this.audit.recordMany(audit, manager);
      published = commands;
    });
    if (published.length > 0) await this.commands.publishMany(published).catch(() => undefined);
  }
}
