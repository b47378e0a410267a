import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { Actor } from '../auth/actor';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { ExecutionState } from './execution-state';
import { ExecutionsRepository } from './executions.repository';
import { InFlightCancellation, InFlightCanceller } from './in-flight-cancel.service';
import { RolloutRow, RolloutStatus } from './rollout-rows';
import { RolloutView } from './rollout-views';
import { RolloutsRepository } from './rollouts.repository';
import { RolloutsService } from './rollouts.service';

const FINISHED_ROLLOUT_STATUSES = [RolloutStatus.Completed, RolloutStatus.Canceled, RolloutStatus.Aborted];

/**
 * The operator's actions on a rollout (pause, resume, cancel, approve, retry). Each runs in one
 * transaction that holds the rollout row locked, and is audited with the status before and after.
 */
@Injectable()
export class RolloutActions {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly rollouts: RolloutsRepository,
    private readonly executions: ExecutionsRepository,
    private readonly reads: RolloutsService,
    private readonly audit: AuditService,
    private readonly inFlight: InFlightCanceller,
  ) {}

  async pause(id: string, actor: Actor, reason?: string): Promise<RolloutView> {
    return this.transition(id, actor, 'rollout.paused', reason, async (manager, rollout) => {
      this.require(rollout, [RolloutStatus.Running], 'pause');
      await this.rollouts.setStatus(manager, id, RolloutStatus.Paused, reason ?? `paused by ${actor.name}`);
    });
  }

  /**
   * Running again. A wave that missed its criterion counts as accepted by the operator (the next wave
   * follows); abort rules that fired fire again only if more devices fail.
   */
  async resume(id: string, actor: Actor, reason?: string): Promise<RolloutView> {
    return this.transition(id, actor, 'rollout.resumed', reason, async (manager, rollout) => {
      this.require(rollout, [RolloutStatus.Paused], 'resume');
      await this.rollouts.acceptFailedWave(manager, id, rollout.current_wave, actor.name);
      await this.rollouts.setStatus(manager, id, RolloutStatus.Running, null);
    });
  }

  /**
   * Stops for good: devices not dispatched yet are canceled; devices in flight get a `cancel` for their
   * command (published after commit) and are canceled too (InFlightCanceller).
   */
  async cancel(id: string, actor: Actor, reason?: string): Promise<RolloutView> {
    let inFlight: InFlightCancellation = { canceled: 0, commands: [] };
    const view = await this.transition(id, actor, 'rollout.canceled', reason, async (manager, rollout) => {
      this.require(rollout, [RolloutStatus.Running, RolloutStatus.Paused], 'cancel');
      const why = `rollout canceled by ${actor.name}`;
      const queued = await this.executions.cancelQueued(manager, id, why);
      inFlight = await this.inFlight.cancel(manager, id, why, actor);
      await this.rollouts.finish(manager, id, RolloutStatus.Canceled, reason ?? `canceled by ${actor.name}`);
      return { canceledQueued: queued, canceledInFlight: inFlight.canceled, cancelCommands: inFlight.commands.length };
    });
    await this.inFlight.publish(inFlight);
    return view;
  }

  /** Approves the next wave that waits for (or will need) an approval. */
  async approve(id: string, actor: Actor, reason?: string): Promise<RolloutView> {
    return this.transition(id, actor, 'rollout.wave.approved', reason, async (manager, rollout) => {
      this.require(rollout, [RolloutStatus.Running, RolloutStatus.Paused], 'approve a wave of');
      const wave = await this.rollouts.approveNextWave(manager, id, actor.name);
      if (wave === null)
        throw new DomainError(DomainErrorCode.NoWaveAwaitingApproval, `rollout ${id} has no wave waiting for approval`);
      return { wave };
    });
  }

  /** Failed, rejected, rolled-back and timed-out devices only get another attempt; the rollout runs again. */
  async retryFailed(id: string, actor: Actor, reason?: string): Promise<RolloutView> {
    return this.transition(id, actor, 'rollout.retry-failed', reason, async (manager, rollout) => {
      this.require(
        rollout,
        [RolloutStatus.Running, RolloutStatus.Paused, RolloutStatus.Completed],
        'retry failed devices of',
      );
      const rows = await this.executions.requeueFailed(manager, id);
      if (rows.length === 0)
        throw new DomainError(DomainErrorCode.NoFailedDevices, `rollout ${id} has no failed devices`);
      await this.executions.recordHistory(
        manager,
        rows.map((r) => ({
          executionId: r.id,
          attempt: r.attempt,
          from: null,
          to: ExecutionState.Queued,
          detail: { reason: `retry requested by ${actor.name}` },
        })),
      );
      // the current wave is judged again once the retried devices have an outcome
      await this.rollouts.reopenWave(manager, id, rollout.current_wave);
      await this.rollouts.runAgain(manager, id);
      return { retried: rows.length, devices: rows.slice(0, 100).map((r) => r.device_id) };
    });
  }

  private async transition(
    id: string,
    actor: Actor,
    action: string,
    reason: string | undefined,
    change: (manager: EntityManager, rollout: RolloutRow) => Promise<Record<string, unknown> | void>,
  ): Promise<RolloutView> {
    await this.dataSource.transaction(async (manager) => {
      const rollout = await this.reads.row(manager, id, true);
      const extra = await change(manager, rollout);
      const after = await this.rollouts.statusOf(manager, id);
      await this.audit.record(
        {
          actor,
          action,
          subjectType: 'rollout',
          subjectId: id,
          before: { status: rollout.status, statusReason: rollout.status_reason },
          after: { status: after.status, currentWave: after.current_wave, ...(extra ?? {}) },
          reason,
        },
        manager,
      );
    });
    return this.reads.get(id);
  }

  private require(rollout: RolloutRow, allowed: RolloutStatus[], what: string): void {
    if (!allowed.includes(rollout.status)) {
      // the code says what to do: nothing (finished), resume first (paused), or pause first (running)
      const code = FINISHED_ROLLOUT_STATUSES.includes(rollout.status)
        ? DomainErrorCode.RolloutFinished
        : rollout.status === RolloutStatus.Paused
          ? DomainErrorCode.RolloutNotRunning
          : DomainErrorCode.RolloutNotPaused;
      throw new DomainError(code, `cannot ${what} rollout ${rollout.id}: it is ${rollout.status}`, {
        status: rollout.status,
      });
    }
  }
}
