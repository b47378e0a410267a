import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { DeviceFeed } from '../devices/device-feed';
import { MetricsService } from '../metrics/metrics.service';
import { EngineLeadership } from './engine-leadership.service';
import { ROLLOUT_ENGINE_ACTOR } from './engine-actor';
import { ExecutionState } from './execution-state';
import { ExecutionsRepository } from './executions.repository';
import { JobEventFollower } from './job-event-follower.service';
import { JobEventTargetsRepository } from './job-event-targets.repository';
import { RevertSender } from './revert-sender.service';
import { ROLLOUT_COMMAND_PORT, RolloutCommandPort } from './rollout-command-port';
import { RolloutPlanner } from './rollout-planner.service';
import { RolloutRow, RolloutStatus } from './rollout-rows';
import { RolloutsRepository } from './rollouts.repository';
import { WaveDispatcher } from './wave-dispatcher.service';
import { WaveProgression } from './wave-progression.service';

/** How often the leader works; device events are picked up within this. */
export const ENGINE_TICK_MS = 500;
/** How often a non-leader tries to take over. */
export const LEADER_RETRY_MS = 2000;
/** How often continuous rollouts look for devices that newly match. */
const JOIN_EVERY_MS = 2000;
/** How often in-flight work that has not moved is checked against its events again. */
const RECONCILE_EVERY_MS = 10_000;

/**
 * The rollout engine (docs/rollouts.md "Engine"). Every piece of state is in PostgreSQL (waves, deadlines,
 * soak ends, executions, the event cursor), so a restarted or newly elected leader simply carries on: a timer
 * is a timestamp compared with now() on each tick. Only the leader (EngineLeadership) runs ticks.
 */
@Injectable()
export class RolloutEngine implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(RolloutEngine.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private lastLeaderAttempt = 0;
  private lastReconcile = 0;
  private readonly lastJoin = new Map<string, number>();
  private readonly ticks;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly rollouts: RolloutsRepository,
    private readonly executions: ExecutionsRepository,
    private readonly targets: JobEventTargetsRepository,
    private readonly devices: DeviceFeed,
    private readonly leadership: EngineLeadership,
    private readonly follower: JobEventFollower,
    private readonly dispatcher: WaveDispatcher,
    private readonly waves: WaveProgression,
    private readonly reverts: RevertSender,
    private readonly planner: RolloutPlanner,
    private readonly audit: AuditService,
    @Inject(ROLLOUT_COMMAND_PORT) private readonly commands: RolloutCommandPort,
    metrics: MetricsService,
  ) {
    this.ticks = metrics.counter(
      'cowroot_rollout_engine_ticks_total',
      'Rollout engine ticks run by this instance as leader',
    );
  }

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.leadership.resign();
  }

  /** One engine pass now (tests, and the scheduled loop). */
  async tick(): Promise<void> {
    if (!this.leadership.isLeader) {
      if (Date.now() - this.lastLeaderAttempt < LEADER_RETRY_MS) return;
      this.lastLeaderAttempt = Date.now();
      if (!(await this.leadership.ensure())) return;
      await this.resendUndelivered();
    } else if (!(await this.leadership.ensure())) {
      return;
    }
    this.ticks.inc();
    await this.follower.followOnce();
    if (Date.now() - this.lastReconcile >= RECONCILE_EVERY_MS) {
      this.lastReconcile = Date.now();
      const caughtUp = await this.follower.reconcileOnce();
      if (caughtUp > 0)
        this.logger.warn(`applied ${caughtUp} job event(s) the cursor had passed before they committed`);
    }
    await this.expireDeadlines();
    const rollouts = await this.rollouts.active(this.dataSource.manager);
    for (const rollout of rollouts) {
      try {
        await this.step(rollout);
      } catch (error) {
        this.logger.error(`rolloutId=${rollout.id} engine step failed: ${(error as Error).stack ?? error}`);
      }
    }
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((error: Error) => this.logger.error(`engine tick failed: ${error.stack ?? error.message}`))
        .finally(() => {
          this.running = null;
          this.schedule(ENGINE_TICK_MS);
        });
    }, delay);
  }

  /**
   * A new leader re-publishes the engine's commands that no device acknowledged: the previous leader may
   * have committed them and died before publishing. The agent runs a command id at most once.
   */
  private async resendUndelivered(): Promise<void> {
    const devices = await this.devices.devicesWithUnacknowledged(this.dataSource.manager, this.targets.engineCommands);
    for (const deviceId of devices) await this.commands.resendUndelivered(deviceId).catch(() => 0);
    if (devices.length) this.logger.log(`re-sent unacknowledged rollout commands to ${devices.length} device(s)`);
  }

  /** In-flight executions past their wave timeout become timed-out (a later device outcome still wins). */
  private async expireDeadlines(): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const expired = await this.executions.expireDeadlines(manager);
      if (expired.length === 0) return;
      await this.executions.recordHistory(
        manager,
        expired.map((e) => ({
          executionId: e.id,
          attempt: e.attempt,
          from: e.from_state,
          to: ExecutionState.TimedOut,
          commandId: e.command_id,
          detail: { reason: 'wave timeout' },
        })),
      );
      await this.audit.recordMany(
        expired.map((e) => ({
          actor: ROLLOUT_ENGINE_ACTOR,
          action: 'rollout.execution.timed-out',
          subjectType: 'device',
          subjectId: e.device_id,
          before: { state: e.from_state },
          after: {
            rolloutId: e.rollout_id,
            executionId: e.id,
            attempt: e.attempt,
            state: ExecutionState.TimedOut,
            commandId: e.command_id,
          },
          reason: e.failure_reason ?? undefined,
        })),
        manager,
      );
    });
  }

  private async step(snapshot: RolloutRow): Promise<void> {
    if (snapshot.continuous && snapshot.status !== RolloutStatus.Aborted) await this.joinNewDevices(snapshot);
    if (snapshot.status === RolloutStatus.Aborted) {
      await this.reverts.sendReverts(snapshot.id);
      return;
    }
    if (snapshot.status !== RolloutStatus.Running) return;
    const dispatchable = await this.dataSource.transaction(async (manager) => {
      const rollout = await this.rollouts.find(manager, snapshot.id, true);
      if (rollout?.status !== RolloutStatus.Running) return false;
      if (await this.waves.applyAbortRules(manager, rollout)) return false;
      return this.waves.advanceWaves(manager, rollout);
    });
    if (dispatchable) {
      const rollout = await this.rollouts.find(this.dataSource.manager, snapshot.id);
      if (rollout) await this.dispatcher.dispatchNext(rollout);
    }
    const after = await this.rollouts.statusOf(this.dataSource.manager, snapshot.id);
    if (after.status === RolloutStatus.Aborted) await this.reverts.sendReverts(snapshot.id);
  }

  private async joinNewDevices(rollout: RolloutRow): Promise<void> {
    const last = this.lastJoin.get(rollout.id) ?? 0;
    if (Date.now() - last < JOIN_EVERY_MS) return;
    this.lastJoin.set(rollout.id, Date.now());
    await this.dataSource.transaction(async (manager) => {
      const waves = await this.rollouts.waveCount(manager, rollout.id);
      const joined = await this.planner.joinNewDevices(manager, {
        rolloutId: rollout.id,
        selector: rollout.selector,
        releaseRef: `${rollout.release_name}@${rollout.release_version}`,
        randomize: rollout.randomize,
        lastWave: waves - 1,
      });
      if (joined.length === 0) return;
      await this.audit.record(
        {
          actor: ROLLOUT_ENGINE_ACTOR,
          action: 'rollout.devices-joined',
          subjectType: 'rollout',
          subjectId: rollout.id,
          after: { count: joined.length, wave: waves - 1, devices: joined.slice(0, 100) },
          reason: 'continuous mode: devices newly matching the selector',
        },
        manager,
      );
    });
  }
}
