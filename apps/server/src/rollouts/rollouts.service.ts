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
import { ExecutionState } from './execution-state';
import { ExecutionsRepository } from './executions.repository';
import { RolloutPlanner } from './rollout-planner.service';
import { RolloutRow, RolloutStatus } from './rollout-rows';
import {
  ExecutionView,
  HistoryView,
  RolloutView,
  executionView,
  historyView,
  rolloutView,
  waveView,
} from './rollout-views';
import { NewWave, RolloutsRepository } from './rollouts.repository';
import { StateCounts } from './wave-criterion';

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

/**
 * Operator side of rollouts: create (plan) and read. The actions (pause, resume, cancel, approve, retry)
 * are RolloutActions'; the engine does the rest.
 */
@Injectable()
export class RolloutsService implements OnModuleInit {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly rollouts: RolloutsRepository,
    private readonly executionRows: ExecutionsRepository,
    private readonly audit: AuditService,
    private readonly releases: ReleasesService,
    private readonly usage: ReleaseUsageService,
    private readonly planner: RolloutPlanner,
  ) {}

  /** A release that an unfinished rollout offers must not be deleted. */
  onModuleInit(): void {
    this.usage.register('rollouts', async (release, manager) => {
      const rows = await this.rollouts.activeOffering(manager, release.id);
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
    const waves: NewWave[] = input.waves.map((wave, index) => {
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
      await this.rollouts.insert(
        manager,
        {
          id,
          name: input.name,
          release,
          selector: input.selector,
          abortRules,
          dispatchPerMinute: input.dispatchPerMinute ?? null,
          randomize: input.randomize ?? true,
          continuous: input.continuous ?? false,
          rebootMode: input.rebootMode ?? RebootMode.Now,
          createdBy: actor,
        },
        waves,
      );
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
    let before: { createdAt: string; id: string } | undefined;
    if (cursor) {
      before = decodeCursor(cursor, isCreatedCursor) ?? undefined;
      if (!before) throw new DomainError(DomainErrorCode.InvalidCursor, 'invalid cursor');
    }
    const rows = await this.rollouts.page(this.dataSource.manager, status, limit, before);
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
    let after: { wave: number; order: number } | undefined;
    if (cursor) {
      after = decodeCursor(cursor, isOrderCursor) ?? undefined;
      if (!after) throw new DomainError(DomainErrorCode.InvalidCursor, 'invalid cursor');
    }
    const rows = await this.executionRows.page(this.dataSource.manager, id, filter, limit, after);
    const items = rows.slice(0, limit);
    const lastRow = items[items.length - 1];
    return {
      items: items.map(executionView),
      nextCursor: rows.length > limit ? encodeCursor({ wave: lastRow.wave_index, order: lastRow.order_key }) : null,
    };
  }

  async execution(id: string, deviceId: string): Promise<ExecutionView & { history: HistoryView[] }> {
    const row =
      isDeviceId(deviceId) && UUID_PATTERN.test(id)
        ? await this.executionRows.ofDevice(this.dataSource.manager, id, deviceId)
        : undefined;
    if (!row)
      throw new DomainError(DomainErrorCode.ExecutionNotFound, `device ${deviceId} is not part of rollout ${id}`);
    const history = await this.executionRows.history(this.dataSource.manager, row.id);
    return { ...executionView(row), history: history.map(historyView) };
  }

  /**
   * The rollout's audit timeline, oldest first: what operators and the engine did to the rollout, and
   * what happened on each device in it (dispatch with the chosen artifact, outcomes with check output).
   */
  async timeline(id: string, limit: number): Promise<TimelineEntryDto[]> {
    await this.row(this.dataSource.manager, id);
    const rows = await this.audit.timelineOf(
      { type: 'rollout', id },
      { subjectType: 'device', actionPrefix: 'rollout.', afterKey: 'rolloutId' },
      limit,
    );
    return rows.map((row) => ({
      id: row.entry_id,
      at: new Date(row.at).toISOString(),
      actor: { type: row.actor_type, id: row.actor_id, name: row.actor_name },
      action: row.action,
      subjectType: row.subject_type,
      subjectId: row.subject_id,
      before: row.before,
      after: row.after,
      reason: row.reason,
    }));
  }

  /** The devices rollout `id` confirmed and the snapshot each came from, or RolloutNotFound (remote rollbacks). */
  async confirmedDevices(
    manager: EntityManager,
    id: string,
  ): Promise<Array<{ deviceId: string; fromSnapshot: string | null }>> {
    const rollout = await this.row(manager, id);
    const rows = await this.executionRows.confirmedDevices(manager, rollout.id);
    return rows.map((row) => ({ deviceId: row.device_id, fromSnapshot: row.from_snapshot }));
  }

  /** The rollout, or RolloutNotFound; locked FOR UPDATE when asked (the actions' transactions). */
  async row(manager: EntityManager, id: string, lock = false): Promise<RolloutRow> {
    const row = UUID_PATTERN.test(id) ? await this.rollouts.find(manager, id, lock) : undefined;
    if (!row) throw new DomainError(DomainErrorCode.RolloutNotFound, `rollout ${id} not found`);
    return row;
  }

  private async view(rollout: RolloutRow): Promise<RolloutView> {
    const waves = await this.rollouts.waves(this.dataSource.manager, rollout.id);
    const counts = await this.executionRows.countByWaveAndState(this.dataSource.manager, rollout.id);
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
