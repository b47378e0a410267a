import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { CommandType, RebootMode } from '@cowroot/protocol';
import { DataSource, EntityManager } from 'typeorm';
import { AuditEntryInput, AuditService } from '../audit/audit.service';
import { DeviceStatus } from '../devices/device.entity';
import { MetricsService } from '../metrics/metrics.service';
import { evaluateAbortRules, AbortAction } from './abort-rules';
import { EngineLeadership } from './engine-leadership.service';
import { ROLLOUT_ENGINE_ACTOR } from './engine-actor';
import { ExecutionState, IN_FLIGHT_STATES } from './execution-state';
import { JobEventFollower } from './job-event-follower.service';
import { ROLLOUT_COMMAND_PORT, RolloutCommandPort, StoredCommand } from './rollout-command-port';
import { RolloutPlanner } from './rollout-planner.service';
import { returningRows } from '../database/returning-rows';
import { ACTIVE_ROLLOUT_STATUSES, RolloutRow, RolloutStatus, WaveRow, WaveStatus } from './rollout-rows';
import { StateCounts, evaluateWave } from './wave-criterion';
import { WaveDispatcher } from './wave-dispatcher.service';
import { recordHistory } from './execution-history';

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
    private readonly leadership: EngineLeadership,
    private readonly follower: JobEventFollower,
    private readonly dispatcher: WaveDispatcher,
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
    const rollouts = (await this.dataSource.query(
      `SELECT * FROM rollouts WHERE status = ANY ($1::text[]) ORDER BY created_at`,
      [ACTIVE_ROLLOUT_STATUSES],
    )) as RolloutRow[];
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
    const rows = (await this.dataSource.query(
      `SELECT DISTINCT c.device_id FROM device_commands c
        WHERE c.status IN ('queued', 'sent')
          AND (EXISTS (SELECT 1 FROM rollout_executions x WHERE x.command_id = c.id OR x.revert_command_id = c.id)
               OR EXISTS (SELECT 1 FROM rollback_devices r WHERE r.command_id = c.id))`,
    )) as { device_id: string }[];
    for (const row of rows) await this.commands.resendUndelivered(row.device_id).catch(() => 0);
    if (rows.length) this.logger.log(`re-sent unacknowledged rollout commands to ${rows.length} device(s)`);
  }

  /** In-flight executions past their wave timeout become timed-out (a later device outcome still wins). */
  private async expireDeadlines(): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const expired = await returningRows<{
        id: string;
        rollout_id: string;
        device_id: string;
        attempt: number;
        from_state: string;
        command_id: string;
        failure_reason: string;
      }>(
        manager,
        `WITH due AS (
           SELECT id, state FROM rollout_executions
            WHERE state = ANY ($1::text[]) AND deadline_at < now()
            FOR UPDATE SKIP LOCKED
         )
         UPDATE rollout_executions x
            SET state = $2, finished_at = now(), updated_at = now(),
                failure_reason = 'no confirmation within the wave timeout (last state: ' || due.state || ')'
           FROM due WHERE x.id = due.id
         RETURNING x.id, x.rollout_id, x.device_id, x.attempt, due.state AS from_state, x.command_id, x.failure_reason`,
        [IN_FLIGHT_STATES, ExecutionState.TimedOut],
      );
      if (expired.length === 0) return;
      await recordHistory(
        manager,
        expired.map((e) => ({
          executionId: e.id,
          attempt: e.attempt,
          from: e.from_state as ExecutionState,
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
          reason: e.failure_reason,
        })),
        manager,
      );
    });
  }

  private async step(snapshot: RolloutRow): Promise<void> {
    if (snapshot.continuous && snapshot.status !== RolloutStatus.Aborted) await this.joinNewDevices(snapshot);
    if (snapshot.status === RolloutStatus.Aborted) {
      await this.sendReverts(snapshot.id);
      return;
    }
    if (snapshot.status !== RolloutStatus.Running) return;
    const dispatchable = await this.dataSource.transaction(async (manager) => {
      const [rollout] = (await manager.query(`SELECT * FROM rollouts WHERE id = $1 FOR UPDATE`, [
        snapshot.id,
      ])) as RolloutRow[];
      if (rollout.status !== RolloutStatus.Running) return false;
      if (await this.applyAbortRules(manager, rollout)) return false;
      return this.advanceWaves(manager, rollout);
    });
    if (dispatchable) {
      const [rollout] = (await this.dataSource.query(`SELECT * FROM rollouts WHERE id = $1`, [
        snapshot.id,
      ])) as RolloutRow[];
      await this.dispatcher.dispatchNext(rollout);
    }
    const [after] = (await this.dataSource.query(`SELECT status FROM rollouts WHERE id = $1`, [
      snapshot.id,
    ])) as RolloutRow[];
    if (after.status === RolloutStatus.Aborted) await this.sendReverts(snapshot.id);
  }

  private async joinNewDevices(rollout: RolloutRow): Promise<void> {
    const last = this.lastJoin.get(rollout.id) ?? 0;
    if (Date.now() - last < JOIN_EVERY_MS) return;
    this.lastJoin.set(rollout.id, Date.now());
    await this.dataSource.transaction(async (manager) => {
      const [{ waves }] = (await manager.query(
        `SELECT count(*)::int AS waves FROM rollout_waves WHERE rollout_id = $1`,
        [rollout.id],
      )) as {
        waves: number;
      }[];
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

  private async countStates(manager: EntityManager, rolloutId: string, waveIndex?: number): Promise<StateCounts> {
    const rows = (await manager.query(
      `SELECT state, count(*)::int AS n FROM rollout_executions WHERE rollout_id = $1 AND ($2::int IS NULL OR wave_index = $2) GROUP BY state`,
      [rolloutId, waveIndex ?? null],
    )) as { state: ExecutionState; n: number }[];
    return Object.fromEntries(rows.map((row) => [row.state, row.n]));
  }

  /** @returns true when a rule fired (the rollout is no longer running) */
  private async applyAbortRules(manager: EntityManager, rollout: RolloutRow): Promise<boolean> {
    if (rollout.abort_rules.length === 0) return false;
    const trigger = evaluateAbortRules(
      rollout.abort_rules,
      await this.countStates(manager, rollout.id),
      rollout.abort_fired,
    );
    if (!trigger) return false;
    const fired = { ...rollout.abort_fired, [String(trigger.ruleIndex)]: trigger.failures };
    const revert = trigger.rule.action === AbortAction.Revert;
    await manager.query(
      `UPDATE rollouts SET status = $2, status_reason = $3, abort_fired = $4, updated_at = now(), finished_at = CASE WHEN $5 THEN now() END WHERE id = $1`,
      [rollout.id, revert ? RolloutStatus.Aborted : RolloutStatus.Paused, trigger.reason, fired, revert],
    );
    const canceled = revert ? await this.cancelQueued(manager, rollout.id, 'rollout aborted by an abort rule') : 0;
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

  /** Executions not dispatched yet are canceled (set-based). @returns how many */
  async cancelQueued(manager: EntityManager, rolloutId: string, reason: string): Promise<number> {
    const rows = await returningRows<{ id: string; attempt: number }>(
      manager,
      `UPDATE rollout_executions SET state = $2, failure_reason = $3, finished_at = now(), updated_at = now()
        WHERE rollout_id = $1 AND state = $4 RETURNING id, attempt`,
      [rolloutId, ExecutionState.Canceled, reason, ExecutionState.Queued],
    );
    await recordHistory(
      manager,
      rows.map((r) => ({
        executionId: r.id,
        attempt: r.attempt,
        from: ExecutionState.Queued,
        to: ExecutionState.Canceled,
        detail: { reason },
      })),
    );
    return rows.length;
  }

  /** Moves the current wave through its states. @returns whether devices may be dispatched now */
  private async advanceWaves(manager: EntityManager, rollout: RolloutRow): Promise<boolean> {
    const waves = (await manager.query(`SELECT * FROM rollout_waves WHERE rollout_id = $1 ORDER BY index`, [
      rollout.id,
    ])) as WaveRow[];
    let current = rollout.current_wave;
    const record = (action: string, after: Record<string, unknown>, reason?: string) =>
      this.audit.record(
        { actor: ROLLOUT_ENGINE_ACTOR, action, subjectType: 'rollout', subjectId: rollout.id, after, reason },
        manager,
      );
    const setWave = (index: number, fields: string, params: unknown[]) =>
      manager.query(`UPDATE rollout_waves SET ${fields} WHERE rollout_id = $1 AND index = $2`, [
        rollout.id,
        index,
        ...params,
      ]);
    for (;;) {
      const wave = waves[current];
      switch (wave.status) {
        case WaveStatus.Pending:
        case WaveStatus.AwaitingApproval:
          if (wave.requires_approval && !wave.approved_at) {
            if (wave.status === WaveStatus.Pending) {
              await setWave(current, `status = $3`, [WaveStatus.AwaitingApproval]);
              await record('rollout.wave.awaiting-approval', { wave: current });
            }
            return false;
          }
          await setWave(current, `status = $3, started_at = now()`, [WaveStatus.Running]);
          wave.status = WaveStatus.Running;
          await record('rollout.wave.started', { wave: current, approvedBy: wave.approved_by });
          return true;
        case WaveStatus.Running: {
          const [{ unfinished }] = (await manager.query(
            `SELECT count(*)::int AS unfinished FROM rollout_executions WHERE rollout_id = $1 AND wave_index < $2 AND state = ANY ($3::text[])`,
            [rollout.id, current, [ExecutionState.Queued, ...IN_FLIGHT_STATES]],
          )) as { unfinished: number }[];
          const verdict = evaluateWave(await this.countStates(manager, rollout.id, current), wave.success_percent);
          if (!verdict.done || unfinished > 0) return true;
          if (verdict.succeeded) {
            await setWave(current, `status = $3, soak_until = now() + make_interval(secs => $4), verdict = $5`, [
              WaveStatus.Soaking,
              wave.soak_seconds,
              verdict,
            ]);
            await record('rollout.wave.succeeded', { wave: current, ...verdict, soakSeconds: wave.soak_seconds });
            wave.status = WaveStatus.Soaking;
            wave.soak_until = new Date(Date.now() + wave.soak_seconds * 1000);
            if (wave.soak_seconds > 0) return false;
            continue;
          }
          const reason = `wave ${current + 1} missed its success criterion: ${verdict.confirmed} of ${verdict.considered} confirmed, ${verdict.requiredConfirmed} (${wave.success_percent}%) required`;
          await setWave(current, `status = $3, finished_at = now(), verdict = $4`, [WaveStatus.Failed, verdict]);
          await manager.query(`UPDATE rollouts SET status = $2, status_reason = $3, updated_at = now() WHERE id = $1`, [
            rollout.id,
            RolloutStatus.Paused,
            reason,
          ]);
          await record('rollout.wave.failed', { wave: current, ...verdict }, reason);
          await record('rollout.paused', { status: RolloutStatus.Paused }, reason);
          return false;
        }
        case WaveStatus.Soaking: {
          const [{ over }] = (await manager.query(`SELECT $1::timestamptz <= now() AS over`, [wave.soak_until])) as {
            over: boolean;
          }[];
          if (!over) return false;
          await setWave(current, `status = $3, finished_at = now()`, [WaveStatus.Succeeded]);
          wave.status = WaveStatus.Succeeded;
          if (current + 1 < waves.length) {
            current += 1;
            await manager.query(`UPDATE rollouts SET current_wave = $2, updated_at = now() WHERE id = $1`, [
              rollout.id,
              current,
            ]);
            continue;
          }
          if (!rollout.continuous) {
            await manager.query(
              `UPDATE rollouts SET status = $2, status_reason = NULL, finished_at = now(), updated_at = now() WHERE id = $1`,
              [rollout.id, RolloutStatus.Completed],
            );
            await record('rollout.completed', { counts: await this.countStates(manager, rollout.id) });
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

  /** Revert rule: every device that confirmed this release in this rollout switches back to where it came from. */
  private async sendReverts(rolloutId: string): Promise<void> {
    let published: StoredCommand[] = [];
    await this.dataSource.transaction(async (manager) => {
      const rows = (await manager.query(
        `SELECT x.id, x.device_id, x.attempt, x.from_snapshot, d.status AS device_status
           FROM rollout_executions x LEFT JOIN devices d ON d.id = x.device_id
          WHERE x.rollout_id = $1 AND x.state = $2 AND x.revert_state IS NULL
          FOR UPDATE OF x`,
        [rolloutId, ExecutionState.Confirmed],
      )) as {
        id: string;
        device_id: string;
        attempt: number;
        from_snapshot: string | null;
        device_status: DeviceStatus | null;
      }[];
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
        await manager.query(
          `UPDATE rollout_executions SET revert_command_id = $2, revert_state = $3, updated_at = now() WHERE id = $1`,
          [row.id, command?.id ?? null, command ? ExecutionState.Notified : ExecutionState.Failed],
        );
        await recordHistory(manager, [
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
