import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { RebootMode, UUID_PATTERN, isDeviceId } from '@cowroot/protocol';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { Actor } from '../auth/actor';
import { decodeCursor, encodeCursor, isInt32, isIsoTimestamp, isUuid, Page } from '../common/cursor';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { ReleaseUsageService } from '../releases/release-usage.service';
import { ReleasesService } from '../releases/releases.service';
import { AbortRule } from './abort-rules';
import { isEmptySelector } from './device-selector';
import { CreateRolloutDto } from './dto/create-rollout.dto';
import { TimelineEntryDto } from './dto/rollout.dto';
import { ExecutionState, FAILURE_STATES } from './execution-state';
import { InFlightCancellation, InFlightCanceller } from './in-flight-cancel.service';
import { RolloutEngine } from './rollout-engine.service';
import { RolloutPlanner } from './rollout-planner.service';
import { returningRows } from '../database/returning-rows';
import { ACTIVE_ROLLOUT_STATUSES, ExecutionRow, RolloutRow, RolloutStatus, WaveRow, WaveStatus } from './rollout-rows';
import {
  ExecutionView,
  HistoryView,
  RolloutView,
  executionView,
  historyView,
  rolloutView,
  waveView,
} from './rollout-views';
import { StateCounts } from './wave-criterion';
import { WaveSize } from './wave-sizing';
import { recordHistory } from './execution-history';

// cursors hold only what encodeCursor wrote: anything else is INVALID_CURSOR before it reaches SQL
const isCreatedCursor = (value: unknown): value is { createdAt: string; id: string } =>
  typeof value === 'object' &&
  value !== null &&
  isIsoTimestamp((value as { createdAt?: unknown }).createdAt) &&
  isUuid((value as { id?: unknown }).id);
const isOrderCursor = (value: unknown): value is { wave: number; order: number } =>
  typeof value === 'object' &&
  value !== null &&
  isInt32((value as { wave?: unknown }).wave) &&
  isInt32((value as { order?: unknown }).order);
const FINISHED_ROLLOUT_STATUSES = [RolloutStatus.Completed, RolloutStatus.Canceled, RolloutStatus.Aborted];

/** Operator side of rollouts: create (plan), read, and the actions; the engine does the rest. */
@Injectable()
export class RolloutsService implements OnModuleInit {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly releases: ReleasesService,
    private readonly usage: ReleaseUsageService,
    private readonly planner: RolloutPlanner,
    private readonly engine: RolloutEngine,
    private readonly inFlight: InFlightCanceller,
  ) {}

  /** A release that an unfinished rollout offers must not be deleted. */
  onModuleInit(): void {
    this.usage.register('rollouts', async (release, manager) => {
      const rows = (await manager.query(
        `SELECT id, name, status FROM rollouts WHERE release_id = $1 AND status = ANY ($2::text[]) LIMIT 20`,
        [release.id, ACTIVE_ROLLOUT_STATUSES],
      )) as { id: string; name: string; status: string }[];
      return rows.map((row) => ({ kind: 'rollout', id: row.id, detail: `rollout "${row.name}" is ${row.status}` }));
    });
  }

  async create(input: CreateRolloutDto, actor: Actor): Promise<RolloutView> {
    if (isEmptySelector(input.selector)) {
      throw new DomainError(
        DomainErrorCode.RolloutSelectorEmpty,
        'the selector targets nothing: give tags, deviceIds or a filter, or all: true',
      );
    }
    const waves: (WaveSize & {
      successPercent: number;
      timeoutSeconds: number;
      soakSeconds: number;
      requiresApproval: boolean;
    })[] = input.waves.map((wave, index) => {
      if ((wave.count === undefined) === (wave.percent === undefined)) {
        throw new DomainError(
          DomainErrorCode.RolloutWavesInvalid,
          `wave ${index + 1}: give exactly one of count or percent`,
        );
      }
      return {
        kind: wave.count !== undefined ? 'count' : 'percent',
        value: wave.count ?? wave.percent!,
        successPercent: wave.successPercent ?? 100,
        timeoutSeconds: wave.timeoutSeconds,
        soakSeconds: wave.soakSeconds ?? 0,
        requiresApproval: wave.requiresApproval ?? false,
      };
    });
    const last = waves[waves.length - 1];
    if (input.continuous && !(last.kind === 'percent' && last.value === 100)) {
      throw new DomainError(
        DomainErrorCode.RolloutWavesInvalid,
        'a continuous rollout must end with a 100% wave: newly matching devices join it',
      );
    }
    const release = await this.releases.get(input.release.name, input.release.version);
    const artifacts = await this.releases.artifactsOf(release.id);
    if (artifacts.length === 0) {
      throw new DomainError(
        DomainErrorCode.ReleaseHasNoArtifacts,
        `release ${release.name} ${release.version} has no artifacts yet`,
      );
    }
    const abortRules: AbortRule[] = (input.abortRules ?? []).map((rule) => ({
      kind: rule.kind,
      thresholdPercent: rule.thresholdPercent,
      minExecuted: rule.minExecuted ?? 1,
      action: rule.action,
    }));
    const id = randomUUID();
    await this.dataSource.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO rollouts (id, name, release_id, release_name, release_version, selector, abort_rules, dispatch_per_minute, randomize,
                               continuous, reboot_mode, status, created_by, created_by_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
        [
          id,
          input.name,
          release.id,
          release.name,
          release.version,
          JSON.parse(JSON.stringify(input.selector)),
          JSON.stringify(abortRules),
          input.dispatchPerMinute ?? null,
          input.randomize ?? true,
          input.continuous ?? false,
          input.rebootMode ?? RebootMode.Now,
          RolloutStatus.Running,
          actor.id,
          actor.name,
        ],
      );
      for (const [index, wave] of waves.entries()) {
        await manager.query(
          `INSERT INTO rollout_waves (rollout_id, index, size_kind, size_value, success_percent, timeout_seconds, soak_seconds, requires_approval)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [
            id,
            index,
            wave.kind,
            wave.value,
            wave.successPercent,
            wave.timeoutSeconds,
            wave.soakSeconds,
            wave.requiresApproval,
          ],
        );
      }
      const planned = await this.planner.planAll(manager, {
        rolloutId: id,
        selector: input.selector,
        releaseRef: `${release.name}@${release.version}`,
        waves,
        randomize: input.randomize ?? true,
      });
      await this.audit.record(
        {
          actor,
          action: 'rollout.created',
          subjectType: 'rollout',
          subjectId: id,
          after: {
            name: input.name,
            release: { name: release.name, version: release.version },
            selector: input.selector,
            waves,
            abortRules,
            plannedPerWave: planned,
            dispatchPerMinute: input.dispatchPerMinute ?? null,
            continuous: input.continuous ?? false,
          },
          reason: input.reason,
        },
        manager,
      );
    });
    return this.get(id);
  }

  async list(status: RolloutStatus | undefined, limit: number, cursor?: string): Promise<Page<RolloutView>> {
    const params: unknown[] = [limit + 1];
    let where = 'TRUE';
    if (status) {
      params.push(status);
      where += ` AND status = $${params.length}`;
    }
    if (cursor) {
      const position = decodeCursor(cursor, isCreatedCursor);
      if (!position) throw new DomainError(DomainErrorCode.InvalidCursor, 'invalid cursor');
      params.push(position.createdAt, position.id);
      where += ` AND (created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`;
    }
    const rows = (await this.dataSource.query(
      `SELECT * FROM rollouts WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $1`,
      params,
    )) as RolloutRow[];
    const items = rows.slice(0, limit);
    const views = await Promise.all(items.map((row) => this.view(row)));
    const lastRow = items[items.length - 1];
    return {
      items: views,
      nextCursor:
        rows.length > limit
          ? encodeCursor({ createdAt: new Date(lastRow.created_at).toISOString(), id: lastRow.id })
          : null,
    };
  }

  async get(id: string): Promise<RolloutView> {
    return this.view(await this.row(this.dataSource.manager, id));
  }

  async executions(
    id: string,
    filter: { state?: ExecutionState; wave?: number },
    limit: number,
    cursor?: string,
  ): Promise<Page<ExecutionView>> {
    await this.row(this.dataSource.manager, id);
    const params: unknown[] = [id, limit + 1];
    let where = 'rollout_id = $1';
    if (filter.state) {
      params.push(filter.state);
      where += ` AND state = $${params.length}`;
    }
    if (filter.wave !== undefined) {
      params.push(filter.wave);
      where += ` AND wave_index = $${params.length}`;
    }
    if (cursor) {
      const position = decodeCursor(cursor, isOrderCursor);
      if (!position) throw new DomainError(DomainErrorCode.InvalidCursor, 'invalid cursor');
      params.push(position.wave, position.order);
      where += ` AND (wave_index, order_key) > ($${params.length - 1}, $${params.length})`;
    }
    const rows = (await this.dataSource.query(
      `SELECT * FROM rollout_executions WHERE ${where} ORDER BY wave_index, order_key LIMIT $2`,
      params,
    )) as ExecutionRow[];
    const items = rows.slice(0, limit);
    const lastRow = items[items.length - 1];
    return {
      items: items.map(executionView),
      nextCursor: rows.length > limit ? encodeCursor({ wave: lastRow.wave_index, order: lastRow.order_key }) : null,
    };
  }

  async execution(id: string, deviceId: string): Promise<ExecutionView & { history: HistoryView[] }> {
    const rows =
      isDeviceId(deviceId) && UUID_PATTERN.test(id)
        ? ((await this.dataSource.query(`SELECT * FROM rollout_executions WHERE rollout_id = $1 AND device_id = $2`, [
            id,
            deviceId,
          ])) as ExecutionRow[])
        : [];
    if (rows.length === 0)
      throw new DomainError(DomainErrorCode.ExecutionNotFound, `device ${deviceId} is not part of rollout ${id}`);
    const history = (await this.dataSource.query(
      `SELECT at, attempt, from_state, to_state, event_id, command_id, detail FROM rollout_execution_history WHERE execution_id = $1 ORDER BY id`,
      [rows[0].id],
    )) as Parameters<typeof historyView>[0][];
    return { ...executionView(rows[0]), history: history.map(historyView) };
  }

  /**
   * The rollout's audit timeline, oldest first: what operators and the engine did to the rollout, and
   * what happened on each device in it (dispatch with the chosen artifact, outcomes with check output).
   */
  async timeline(id: string, limit: number): Promise<TimelineEntryDto[]> {
    await this.row(this.dataSource.manager, id);
    const rows = (await this.dataSource.query(
      `SELECT id::text AS entry_id, at, actor_type, actor_id, actor_name, action, subject_type, subject_id, before, after, reason
         FROM audit_log
        WHERE (subject_type = 'rollout' AND subject_id = $1)
           OR (subject_type = 'device' AND action LIKE 'rollout.%' AND after->>'rolloutId' = $1)
        ORDER BY audit_log.id
        LIMIT $2`,
      [id, limit],
    )) as Array<Record<string, unknown>>;
    return rows.map((row) => ({
      id: row.entry_id as string,
      at: new Date(row.at as string).toISOString(),
      actor: { type: row.actor_type as string, id: row.actor_id as string, name: row.actor_name as string },
      action: row.action as string,
      subjectType: row.subject_type as string,
      subjectId: row.subject_id as string,
      before: row.before,
      after: row.after,
      reason: row.reason as string | null,
    }));
  }

  async pause(id: string, actor: Actor, reason?: string): Promise<RolloutView> {
    return this.transition(id, actor, 'rollout.paused', reason, async (manager, rollout) => {
      this.require(rollout, [RolloutStatus.Running], 'pause');
      await this.setStatus(manager, id, RolloutStatus.Paused, reason ?? `paused by ${actor.name}`);
    });
  }

  /**
   * Running again. A wave that missed its criterion counts as accepted by the operator (the next wave
   * follows); abort rules that fired fire again only if more devices fail.
   */
  async resume(id: string, actor: Actor, reason?: string): Promise<RolloutView> {
    return this.transition(id, actor, 'rollout.resumed', reason, async (manager, rollout) => {
      this.require(rollout, [RolloutStatus.Paused], 'resume');
      await manager.query(
        `UPDATE rollout_waves SET status = $3, soak_until = now(), verdict = coalesce(verdict, '{}'::jsonb) || $4::jsonb
          WHERE rollout_id = $1 AND index = $2 AND status = $5`,
        [id, rollout.current_wave, WaveStatus.Soaking, JSON.stringify({ acceptedBy: actor.name }), WaveStatus.Failed],
      );
      await this.setStatus(manager, id, RolloutStatus.Running, null);
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
      const queued = await this.engine.cancelQueued(manager, id, why);
      inFlight = await this.inFlight.cancel(manager, id, why, actor);
      await manager.query(
        `UPDATE rollouts SET status = $2, status_reason = $3, finished_at = now(), updated_at = now() WHERE id = $1`,
        [id, RolloutStatus.Canceled, reason ?? `canceled by ${actor.name}`],
      );
      return { canceledQueued: queued, canceledInFlight: inFlight.canceled, cancelCommands: inFlight.commands.length };
    });
    await this.inFlight.publish(inFlight);
    return view;
  }

  /** Approves the next wave that waits for (or will need) an approval. */
  async approve(id: string, actor: Actor, reason?: string): Promise<RolloutView> {
    return this.transition(id, actor, 'rollout.wave.approved', reason, async (manager, rollout) => {
      this.require(rollout, [RolloutStatus.Running, RolloutStatus.Paused], 'approve a wave of');
      const list = await returningRows<{ index: number }>(
        manager,
        `UPDATE rollout_waves SET approved_by = $2, approved_at = now()
          WHERE rollout_id = $1 AND index = (
            SELECT min(index) FROM rollout_waves
             WHERE rollout_id = $1 AND requires_approval AND approved_at IS NULL AND status IN ($3, $4))
          RETURNING index`,
        [id, actor.name, WaveStatus.Pending, WaveStatus.AwaitingApproval],
      );
      if (list.length === 0)
        throw new DomainError(DomainErrorCode.NoWaveAwaitingApproval, `rollout ${id} has no wave waiting for approval`);
      return { wave: list[0].index };
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
      const rows = await returningRows<{ id: string; attempt: number; device_id: string }>(
        manager,
        `UPDATE rollout_executions
            SET state = $2, attempt = attempt + 1, command_id = NULL, command_type = NULL, artifact_id = NULL, artifact_file = NULL,
                artifact_kind = NULL, artifact_bytes = NULL, failure_reason = NULL, dispatched_at = NULL, deadline_at = NULL,
                finished_at = NULL, updated_at = now()
          WHERE rollout_id = $1 AND state = ANY ($3::text[])
          RETURNING id, attempt, device_id`,
        [id, ExecutionState.Queued, FAILURE_STATES],
      );
      if (rows.length === 0)
        throw new DomainError(DomainErrorCode.NoFailedDevices, `rollout ${id} has no failed devices`);
      await recordHistory(
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
      await manager.query(
        `UPDATE rollout_waves SET status = $3, finished_at = NULL, soak_until = NULL WHERE rollout_id = $1 AND index = $2 AND status IN ($4, $5, $6)`,
        [id, rollout.current_wave, WaveStatus.Running, WaveStatus.Failed, WaveStatus.Succeeded, WaveStatus.Soaking],
      );
      await manager.query(
        `UPDATE rollouts SET status = $2, status_reason = NULL, abort_fired = '{}', finished_at = NULL, updated_at = now() WHERE id = $1`,
        [id, RolloutStatus.Running],
      );
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
      const rollout = await this.row(manager, id, true);
      const extra = await change(manager, rollout);
      const [after] = (await manager.query(`SELECT status, status_reason, current_wave FROM rollouts WHERE id = $1`, [
        id,
      ])) as RolloutRow[];
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
    return this.get(id);
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

  private async setStatus(
    manager: EntityManager,
    id: string,
    status: RolloutStatus,
    reason: string | null,
  ): Promise<void> {
    await manager.query(`UPDATE rollouts SET status = $2, status_reason = $3, updated_at = now() WHERE id = $1`, [
      id,
      status,
      reason,
    ]);
  }

  private async row(manager: EntityManager, id: string, lock = false): Promise<RolloutRow> {
    const rows = UUID_PATTERN.test(id)
      ? ((await manager.query(`SELECT * FROM rollouts WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [
          id,
        ])) as RolloutRow[])
      : [];
    if (rows.length === 0) throw new DomainError(DomainErrorCode.RolloutNotFound, `rollout ${id} not found`);
    return rows[0];
  }

  private async view(rollout: RolloutRow): Promise<RolloutView> {
    const waves = (await this.dataSource.query(`SELECT * FROM rollout_waves WHERE rollout_id = $1 ORDER BY index`, [
      rollout.id,
    ])) as WaveRow[];
    const counts = (await this.dataSource.query(
      `SELECT wave_index, state, count(*)::int AS n FROM rollout_executions WHERE rollout_id = $1 GROUP BY wave_index, state`,
      [rollout.id],
    )) as { wave_index: number; state: ExecutionState; n: number }[];
    const total: StateCounts = {};
    const perWave = new Map<number, StateCounts>();
    for (const row of counts) {
      total[row.state] = (total[row.state] ?? 0) + row.n;
      const wave = perWave.get(row.wave_index) ?? {};
      wave[row.state] = row.n;
      perWave.set(row.wave_index, wave);
    }
    return rolloutView(
      rollout,
      waves.map((wave) => waveView(wave, perWave.get(wave.index) ?? {})),
      total,
    );
  }
}
