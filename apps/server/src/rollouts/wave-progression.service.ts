import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { AbortAction, evaluateAbortRules } from './abort-rules';
import { ROLLOUT_ENGINE_ACTOR } from './engine-actor';
import { ExecutionsRepository } from './executions.repository';
import { RolloutRow, RolloutStatus, WaveStatus } from './rollout-rows';
import { RolloutsRepository } from './rollouts.repository';
import { evaluateWave } from './wave-criterion';

/**
 * One engine step of a running rollout, in the engine's transaction that holds the rollout row locked
 * (docs/rollouts.md "Waves", "Abort rules"): abort rules first, then the current wave moves through
 * pending → awaiting-approval → running → soaking → succeeded (or failed, which pauses the rollout).
 * Timers are timestamps compared with the database's now(), so any leader carries on where another stopped.
 */
@Injectable()
export class WaveProgression {
  private readonly logger = new Logger(WaveProgression.name);

  constructor(
    private readonly rollouts: RolloutsRepository,
    private readonly executions: ExecutionsRepository,
    private readonly audit: AuditService,
  ) {}

  /** @returns true when a rule fired (the rollout is no longer running) */
  async applyAbortRules(manager: EntityManager, rollout: RolloutRow): Promise<boolean> {
    if (rollout.abort_rules.length === 0) return false;
    const trigger = evaluateAbortRules(
      rollout.abort_rules,
      await this.executions.countStates(manager, rollout.id),
      rollout.abort_fired,
    );
    if (!trigger) return false;
    const fired = { ...rollout.abort_fired, [String(trigger.ruleIndex)]: trigger.failures };
    const revert = trigger.rule.action === AbortAction.Revert;
    await this.rollouts.stopByRule(manager, rollout.id, {
      status: revert ? RolloutStatus.Aborted : RolloutStatus.Paused,
      reason: trigger.reason,
      fired,
      finished: revert,
    });
    const canceled = revert
      ? await this.executions.cancelQueued(manager, rollout.id, 'rollout aborted by an abort rule')
      : 0;
    await this.audit.record(
      {
        actor: ROLLOUT_ENGINE_ACTOR,
        action: revert ? 'rollout.aborted' : 'rollout.paused',
        subjectType: 'rollout',
        subjectId: rollout.id,
        before: { status: rollout.status },
        after: {
          status: revert ? RolloutStatus.Aborted : RolloutStatus.Paused,
          rule: trigger.rule,
          failures: trigger.failures,
          executed: trigger.executed,
          canceled,
        },
        reason: trigger.reason,
      },
      manager,
    );
    this.logger.warn(`rolloutId=${rollout.id} ${trigger.reason}`);
    return true;
  }

  /** Moves the current wave through its states. @returns whether devices may be dispatched now */
  async advanceWaves(manager: EntityManager, rollout: RolloutRow): Promise<boolean> {
    const waves = await this.rollouts.waves(manager, rollout.id);
    let current = rollout.current_wave;
    const record = (action: string, after: Record<string, unknown>, reason?: string) =>
      this.audit.record(
        { actor: ROLLOUT_ENGINE_ACTOR, action, subjectType: 'rollout', subjectId: rollout.id, after, reason },
        manager,
      );
    for (;;) {
      const wave = waves[current];
      switch (wave.status) {
        case WaveStatus.Pending:
        case WaveStatus.AwaitingApproval:
          if (wave.requires_approval && !wave.approved_at) {
            if (wave.status === WaveStatus.Pending) {
              await this.rollouts.markWaveAwaitingApproval(manager, rollout.id, current);
              await record('rollout.wave.awaiting-approval', { wave: current });
            }
            return false;
          }
          await this.rollouts.startWave(manager, rollout.id, current);
          wave.status = WaveStatus.Running;
          await record('rollout.wave.started', { wave: current, approvedBy: wave.approved_by });
          return true;
        case WaveStatus.Running: {
          const unfinished = await this.executions.countUnfinishedBefore(manager, rollout.id, current);
          const verdict = evaluateWave(
            await this.executions.countStates(manager, rollout.id, current),
            wave.success_percent,
          );
          if (!verdict.done || unfinished > 0) return true;
          if (verdict.succeeded) {
            await this.rollouts.soakWave(manager, rollout.id, current, wave.soak_seconds, verdict);
            await record('rollout.wave.succeeded', { wave: current, ...verdict, soakSeconds: wave.soak_seconds });
            wave.status = WaveStatus.Soaking;
            wave.soak_until = new Date(Date.now() + wave.soak_seconds * 1000);
            if (wave.soak_seconds > 0) return false;
            continue;
          }
          const reason = `wave ${current + 1} missed its success criterion: ${verdict.confirmed} of ${verdict.considered} confirmed, ${verdict.requiredConfirmed} (${wave.success_percent}%) required`;
          await this.rollouts.failWave(manager, rollout.id, current, verdict);
          await this.rollouts.setStatus(manager, rollout.id, RolloutStatus.Paused, reason);
          await record('rollout.wave.failed', { wave: current, ...verdict }, reason);
          await record('rollout.paused', { status: RolloutStatus.Paused }, reason);
          return false;
        }
        case WaveStatus.Soaking: {
          if (!(await this.rollouts.isPast(manager, wave.soak_until))) return false;
          await this.rollouts.succeedWave(manager, rollout.id, current);
          wave.status = WaveStatus.Succeeded;
          if (current + 1 < waves.length) {
            current += 1;
            await this.rollouts.setCurrentWave(manager, rollout.id, current);
            continue;
          }
          if (!rollout.continuous) {
            await this.rollouts.finish(manager, rollout.id, RolloutStatus.Completed, null);
            await record('rollout.completed', { counts: await this.executions.countStates(manager, rollout.id) });
            return false;
          }
          return true;
        }
        case WaveStatus.Succeeded:
          // only the last wave of a continuous rollout stays here: newcomers are dispatched as they join
          return rollout.continuous && current === waves.length - 1;
        case WaveStatus.Failed:
          return false;
      }
    }
  }
}
