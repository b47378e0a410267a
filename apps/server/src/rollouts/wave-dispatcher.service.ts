import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { CommandType, RebootMode } from '@cowroot/protocol';
import { DataSource, EntityManager } from 'typeorm';
import { AuditEntryInput, AuditService } from '../audit/audit.service';
import { MetricsService } from '../metrics/metrics.service';
import type { CommandRequest } from '../devices/command-dispatcher.service';
import { DeviceStatus } from '../devices/device.entity';
import { ArtifactPicker } from '../releases/artifact-picker';
import { ArtifactUrlService } from '../releases/artifact-url.service';
import { ReleaseArtifact } from '../releases/release-artifact.entity';
import { Release } from '../releases/release.entity';
import { ReleasesService } from '../releases/releases.service';
import { ROLLOUT_ENGINE_ACTOR } from './engine-actor';
import { ExecutionState } from './execution-state';
import { ROLLOUT_COMMAND_PORT, RolloutCommandPort, StoredCommand } from './rollout-command-port';
import { RolloutRow } from './rollout-rows';
import { ExecutionsRepository } from './executions.repository';
import { RolloutsRepository } from './rollouts.repository';
import { QueuedDevice, QueuePosition, WaveQueueRepository } from './wave-queue.repository';

interface Planned {
  executionId: string;
  deviceId: string;
  attempt: number;
  timeoutSeconds: number;
  request: CommandRequest;
  commandType: CommandType;
  artifact: ReleaseArtifact | null;
  bytes: number;
  choice: string;
  fromSnapshot: string | null;
  targetSnapshot: string | null;
}

interface Dispatched extends Planned {
  command: StoredCommand;
}

interface Finished {
  executionId: string;
  deviceId: string;
  attempt: number;
  state: ExecutionState;
  reason: string;
}

/**
 * Devices per dispatch transaction. A wave larger than this goes out as several batches back to back in
 * the same engine tick, each committed and handed to the broker before the next is planned.
 */
export const DISPATCH_BATCH = 5_000;

/** Most devices one rollout dispatches in one engine tick (the other rollouts get their turn after it). */
export const MAX_DISPATCH_PER_TICK = 100_000;

/**
 * Sends the next queued devices of a running rollout their command: per device the artifact picker
 * chooses (docs/rollouts.md "Dispatch") a switch to a snapshot the device already holds, a delta in a
 * format it reads or an incremental stream whose parent it holds (received_uuid), or the full stream. Commands, execution
 * updates, history and audit commit in one transaction per batch; publishing happens after commit (a
 * device that misses it gets it again when it subscribes, see CommandDispatcher).
 *
 * Publishing does not hold up the engine: a batch's QoS 1 publishes complete only as fast as the
 * devices' sockets drain, and a tick that waited for them made a wave's cost grow with the load the
 * fleet's own answers put on the server (10k → 15k devices: 7.4 s → 60 s). onModuleDestroy waits for
 * the publishes still in flight.
 */
@Injectable()
export class WaveDispatcher implements OnModuleDestroy {
  private readonly logger = new Logger(WaveDispatcher.name);
  private readonly dispatchedTotal;
  private readonly publishing = new Set<Promise<void>>();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly rollouts: RolloutsRepository,
    private readonly queue: WaveQueueRepository,
    private readonly executions: ExecutionsRepository,
    @Inject(ROLLOUT_COMMAND_PORT) private readonly commands: RolloutCommandPort,
    private readonly releases: ReleasesService,
    private readonly picker: ArtifactPicker,
    private readonly urls: ArtifactUrlService,
    private readonly audit: AuditService,
    metrics: MetricsService,
  ) {
    this.dispatchedTotal = metrics.counter(
      'cowroot_rollout_commands_dispatched_total',
      'Rollout commands sent to devices, by command type',
      ['type'],
    );
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all(this.publishing);
  }

  /**
   * Dispatches batches until the rollout's queue in its current waves, its rate allowance or the
   * per-tick maximum runs out.
   * @returns how many devices were handled (got a command, or finished without one)
   */
  async dispatchNext(rollout: RolloutRow): Promise<number> {
    let total = 0;
    // each batch continues after the last one's queue position: the executions it took leave dead entries
    // in the partial queue index until vacuum, which a scan from the start would walk again every batch
    let after: QueuePosition = { waveIndex: -1, orderKey: -1 };
    while (total < MAX_DISPATCH_PER_TICK) {
      const size = Math.min(DISPATCH_BATCH, MAX_DISPATCH_PER_TICK - total, await this.budget(rollout));
      if (size <= 0) break;
      const batch = await this.dispatchBatch(rollout, size, after);
      total += batch.handled;
      if (batch.handled < size || !batch.last) break;
      after = batch.last;
    }
    return total;
  }

  /** One transaction: lock up to `size` queued executions, plan them, record commands, history, audit. */
  private async dispatchBatch(
    rollout: RolloutRow,
    size: number,
    after: QueuePosition,
  ): Promise<{ handled: number; last: QueuePosition | null }> {
    const published: StoredCommand[] = [];
    let last: QueuePosition | null = null;
    const count = await this.dataSource.transaction(async (manager) => {
      // an operator's pause or cancel that committed first wins; one that comes later waits for this batch
      const current = await this.rollouts.lockStatus(manager, rollout.id);
      if (current?.status !== 'running') return 0;
      const queued = await this.queue.lockNextQueued(manager, rollout.id, current.current_wave, size, after);
      if (queued.length === 0) return 0;
      const tail = queued[queued.length - 1];
      last = { waveIndex: tail.wave_index, orderKey: tail.order_key };
      // the releases feature's reads, in this transaction: a release an unfinished rollout offers cannot be deleted
      const release = await this.releases.get(rollout.release_name, rollout.release_version, manager);
      const artifacts = await this.releases.artifactsOf(release.id, manager);
      const planned: Planned[] = [];
      const finished: Finished[] = [];
      for (const device of queued) {
        const outcome = this.plan(rollout, release, artifacts, device);
        if ('state' in outcome) finished.push(outcome);
        else planned.push(outcome);
      }
      const commands = await this.commands.recordMany(
        manager,
        planned.map((p) => ({ deviceId: p.deviceId, request: p.request })),
        ROLLOUT_ENGINE_ACTOR,
      );
      const dispatched: Dispatched[] = planned.map((p, i) => ({ ...p, command: commands[i] }));
      await this.markDispatched(manager, dispatched);
      await this.markFinished(manager, finished);
      await this.audit.recordMany(
        [
          ...dispatched.map((d): AuditEntryInput => ({
            actor: ROLLOUT_ENGINE_ACTOR,
            action: 'rollout.execution.dispatched',
            subjectType: 'device',
            subjectId: d.deviceId,
            after: {
              rolloutId: rollout.id,
              executionId: d.executionId,
              attempt: d.attempt,
              commandId: d.command.id,
              commandType: d.commandType,
              choice: d.choice,
              artifact: d.artifact
                ? { id: d.artifact.id, file: d.artifact.file, kind: d.artifact.kind, sha256: d.artifact.sha256 }
                : null,
              bytes: d.bytes,
              fromSnapshot: d.fromSnapshot,
              targetSnapshot: d.targetSnapshot,
            },
          })),
          ...finished.map((f): AuditEntryInput => ({
            actor: ROLLOUT_ENGINE_ACTOR,
            action: `rollout.execution.${f.state}`,
            subjectType: 'device',
            subjectId: f.deviceId,
            after: { rolloutId: rollout.id, executionId: f.executionId, attempt: f.attempt, state: f.state },
            reason: f.reason,
          })),
        ],
        manager,
      );
      published.push(...dispatched.map((d) => d.command));
      for (const d of dispatched) this.dispatchedTotal.inc({ type: d.commandType });
      return queued.length;
    });
    this.publishInBackground(published);
    return { handled: count, last };
  }

  /** Devices per minute: what the last 60 s left of the allowance. */
  private async budget(rollout: RolloutRow): Promise<number> {
    if (!rollout.dispatch_per_minute) return Number.POSITIVE_INFINITY;
    const recent = await this.queue.countDispatchedLastMinute(this.dataSource.manager, rollout.id);
    return rollout.dispatch_per_minute - recent;
  }

  /** The command for one device (docs/rollouts.md "Dispatch"), or why it gets none. */
  private plan(
    rollout: RolloutRow,
    release: Release,
    artifacts: ReleaseArtifact[],
    device: QueuedDevice,
  ): Planned | Finished {
    const finished = (state: ExecutionState, reason: string): Finished => ({
      executionId: device.id,
      deviceId: device.device_id,
      attempt: device.attempt,
      state,
      reason,
    });
    if (device.device_status !== DeviceStatus.Active)
      return finished(ExecutionState.Canceled, 'device is decommissioned');
    const choice = this.picker.pick(release, artifacts, device.snapshots ?? [], device.delta_formats);
    const reboot = { mode: rollout.reboot_mode ?? RebootMode.Now };
    let request: CommandRequest;
    let artifact: ReleaseArtifact | null = null;
    let targetSnapshot: string | null = null;
    switch (choice.type) {
      case 'none':
        return finished(
          ExecutionState.Failed,
          'no artifact of the release applies to this device (no full stream, no held parent)',
        );
      case 'held':
        // the device already has the release (e.g. after a fallback): offer it again without a download
        request = { type: CommandType.Switch, snapshot: choice.snapshotId, reboot };
        targetSnapshot = choice.snapshotId;
        break;
      default:
        artifact = choice.artifact;
        request = { type: CommandType.Install, artifact: this.urls.offerFor(release, choice.artifact), reboot };
    }
    return {
      executionId: device.id,
      deviceId: device.device_id,
      attempt: device.attempt,
      timeoutSeconds: device.timeout_seconds,
      request,
      commandType: request.type,
      artifact,
      bytes: artifact?.size ?? 0,
      choice:
        choice.type === 'incremental' || choice.type === 'delta'
          ? `${choice.type} from ${choice.parentSnapshotId}`
          : choice.type,
      fromSnapshot: device.booted_snapshot,
      targetSnapshot,
    };
  }

  private async markDispatched(manager: EntityManager, dispatched: Dispatched[]): Promise<void> {
    if (dispatched.length === 0) return;
    await this.queue.markDispatched(
      manager,
      dispatched.map((d) => ({
        executionId: d.executionId,
        commandId: d.command.id,
        commandType: d.commandType,
        artifact: d.artifact,
        bytes: d.bytes,
        fromSnapshot: d.fromSnapshot,
        targetSnapshot: d.targetSnapshot,
        timeoutSeconds: d.timeoutSeconds,
      })),
    );
    await this.executions.recordHistory(
      manager,
      dispatched.map((d) => ({
        executionId: d.executionId,
        attempt: d.attempt,
        from: ExecutionState.Queued,
        to: ExecutionState.Notified,
        commandId: d.command.id,
        detail: { choice: d.choice, artifact: d.artifact?.file ?? null, bytes: d.bytes },
      })),
    );
  }

  private async markFinished(manager: EntityManager, finished: Finished[]): Promise<void> {
    for (const f of finished) {
      await this.queue.markFinished(manager, f.executionId, f.state, f.reason);
    }
    await this.executions.recordHistory(
      manager,
      finished.map((f) => ({
        executionId: f.executionId,
        attempt: f.attempt,
        from: ExecutionState.Queued,
        to: f.state,
        detail: { reason: f.reason },
      })),
    );
  }

  /**
   * QoS 1 publishes after commit, each batch as soon as it committed (a device is in one batch only, so
   * batches need no order between them); a device that misses one gets it when it subscribes.
   */
  private publishInBackground(commands: StoredCommand[]): void {
    if (commands.length === 0) return;
    const publishing = this.commands
      .publishMany(commands)
      .then(() => undefined)
      .catch((error: Error) =>
        this.logger.warn(`publishing ${commands.length} command(s) failed, re-sent on resubscribe: ${error.message}`),
      )
      .finally(() => this.publishing.delete(publishing));
    this.publishing.add(publishing);
  }
}
