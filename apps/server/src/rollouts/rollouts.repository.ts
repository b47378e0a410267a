import { Injectable } from '@nestjs/common';
import { RebootMode } from '@cowroot/protocol';
import { EntityManager, QueryRunner } from 'typeorm';
import { returningRows } from '../database/returning-rows';
import { AbortRule, FiredAt } from './abort-rules';
import { DeviceSelector } from './device-selector';
import { ACTIVE_ROLLOUT_STATUSES, RolloutRow, RolloutStatus, WaveRow, WaveStatus } from './rollout-rows';
import { WaveSize } from './wave-sizing';

/** Distinct from the migration lock ("cowroot"): "cowroll". */
export const ROLLOUT_ENGINE_LOCK_KEY = 0x636f77726f6c6cn;

export interface NewRollout {
  id: string;
  name: string;
  release: { id: string; name: string; version: string };
  selector: DeviceSelector;
  abortRules: AbortRule[];
  dispatchPerMinute: number | null;
  randomize: boolean;
  continuous: boolean;
  rebootMode: RebootMode;
  createdBy: { id: string; name: string };
}

export type NewWave = WaveSize & {
  successPercent: number;
  timeoutSeconds: number;
  soakSeconds: number;
  requiresApproval: boolean;
};

/**
 * Data access of the rollout aggregate: the `rollouts` rows, their `rollout_waves`, and the engine's
 * leader lock. Every method takes the EntityManager (or the lock's QueryRunner) of the caller's
 * transaction; the services decide what happens, these say how it is stored.
 */
@Injectable()
export class RolloutsRepository {
  async insert(manager: EntityManager, rollout: NewRollout, waves: readonly NewWave[]): Promise<void> {
    await manager.query(
      `INSERT INTO rollouts (id, name, release_id, release_name, release_version, selector, abort_rules, dispatch_per_minute, randomize,
                             continuous, reboot_mode, status, created_by, created_by_name)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [
        rollout.id,
        rollout.name,
        rollout.release.id,
        rollout.release.name,
        rollout.release.version,
        JSON.parse(JSON.stringify(rollout.selector)),
        JSON.stringify(rollout.abortRules),
        rollout.dispatchPerMinute,
        rollout.randomize,
        rollout.continuous,
        rollout.rebootMode,
        RolloutStatus.Running,
        rollout.createdBy.id,
        rollout.createdBy.name,
      ],
    );
    for (const [index, wave] of waves.entries()) {
      await manager.query(
        `INSERT INTO rollout_waves (rollout_id, index, size_kind, size_value, success_percent, timeout_seconds, soak_seconds, requires_approval)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          rollout.id,
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
  }

  /** The rollout, locked FOR UPDATE when asked; undefined when there is none. */
  async find(manager: EntityManager, id: string, lock = false): Promise<RolloutRow | undefined> {
    const rows = (await manager.query(`SELECT * FROM rollouts WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [
      id,
    ])) as RolloutRow[];
    return rows[0];
  }

  /** Status and current wave only, locked: the dispatcher's check that a pause or cancel did not come first. */
  async lockStatus(
    manager: EntityManager,
    id: string,
  ): Promise<Pick<RolloutRow, 'status' | 'current_wave'> | undefined> {
    const [row] = (await manager.query(`SELECT status, current_wave FROM rollouts WHERE id = $1 FOR UPDATE`, [
      id,
    ])) as RolloutRow[];
    return row;
  }

  async statusOf(
    manager: EntityManager,
    id: string,
  ): Promise<Pick<RolloutRow, 'status' | 'status_reason' | 'current_wave'>> {
    const [row] = (await manager.query(`SELECT status, status_reason, current_wave FROM rollouts WHERE id = $1`, [
      id,
    ])) as RolloutRow[];
    return row;
  }

  /** Newest first, keyset-paged by (created_at, id); one row more than `limit` says there is a next page. */
  async page(
    manager: EntityManager,
    status: RolloutStatus | undefined,
    limit: number,
    before?: { createdAt: string; id: string },
  ): Promise<RolloutRow[]> {
    const params: unknown[] = [limit + 1];
    let where = 'TRUE';
    if (status) {
      params.push(status);
      where += ` AND status = $${params.length}`;
    }
    if (before) {
      params.push(before.createdAt, before.id);
      where += ` AND (created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`;
    }
    return (await manager.query(
      `SELECT * FROM rollouts WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT $1`,
      params,
    )) as RolloutRow[];
  }

  /** Rollouts the engine works on (running, paused, aborted), oldest first. */
  async active(manager: EntityManager): Promise<RolloutRow[]> {
    return (await manager.query(`SELECT * FROM rollouts WHERE status = ANY ($1::text[]) ORDER BY created_at`, [
      ACTIVE_ROLLOUT_STATUSES,
    ])) as RolloutRow[];
  }

  /** Unfinished rollouts that offer the release (at most 20): it must not be deleted. */
  async activeOffering(
    manager: EntityManager,
    releaseId: string,
  ): Promise<{ id: string; name: string; status: string }[]> {
    return (await manager.query(
      `SELECT id, name, status FROM rollouts WHERE release_id = $1 AND status = ANY ($2::text[]) LIMIT 20`,
      [releaseId, ACTIVE_ROLLOUT_STATUSES],
    )) as { id: string; name: string; status: string }[];
  }

  async setStatus(manager: EntityManager, id: string, status: RolloutStatus, reason: string | null): Promise<void> {
    await manager.query(`UPDATE rollouts SET status = $2, status_reason = $3, updated_at = now() WHERE id = $1`, [
      id,
      status,
      reason,
    ]);
  }

  /** Completed or canceled: a final status, with the time it finished. */
  async finish(manager: EntityManager, id: string, status: RolloutStatus, reason: string | null): Promise<void> {
    await manager.query(
      `UPDATE rollouts SET status = $2, status_reason = $3, finished_at = now(), updated_at = now() WHERE id = $1`,
      [id, status, reason],
    );
  }

  /** An abort rule fired: paused, or aborted (finished) for a revert rule; `fired` remembers at how many failures. */
  async stopByRule(
    manager: EntityManager,
    id: string,
    change: { status: RolloutStatus; reason: string; fired: FiredAt; finished: boolean },
  ): Promise<void> {
    await manager.query(
      `UPDATE rollouts SET status = $2, status_reason = $3, abort_fired = $4, updated_at = now(), finished_at = CASE WHEN $5 THEN now() END WHERE id = $1`,
      [id, change.status, change.reason, change.fired, change.finished],
    );
  }

  /** Retry: running again, with every abort rule armed again and no finish time. */
  async runAgain(manager: EntityManager, id: string): Promise<void> {
    await manager.query(
      `UPDATE rollouts SET status = $2, status_reason = NULL, abort_fired = '{}', finished_at = NULL, updated_at = now() WHERE id = $1`,
      [id, RolloutStatus.Running],
    );
  }

  async setCurrentWave(manager: EntityManager, id: string, index: number): Promise<void> {
    await manager.query(`UPDATE rollouts SET current_wave = $2, updated_at = now() WHERE id = $1`, [id, index]);
  }

  async waves(manager: EntityManager, rolloutId: string): Promise<WaveRow[]> {
    return (await manager.query(`SELECT * FROM rollout_waves WHERE rollout_id = $1 ORDER BY index`, [
      rolloutId,
    ])) as WaveRow[];
  }

  async waveCount(manager: EntityManager, rolloutId: string): Promise<number> {
    const [{ waves }] = (await manager.query(`SELECT count(*)::int AS waves FROM rollout_waves WHERE rollout_id = $1`, [
      rolloutId,
    ])) as { waves: number }[];
    return waves;
  }

  /** Resume: a wave that missed its criterion is accepted by `acceptedBy` and soaks no longer. */
  async acceptFailedWave(manager: EntityManager, rolloutId: string, index: number, acceptedBy: string): Promise<void> {
    await manager.query(
      `UPDATE rollout_waves SET status = $3, soak_until = now(), verdict = coalesce(verdict, '{}'::jsonb) || $4::jsonb
        WHERE rollout_id = $1 AND index = $2 AND status = $5`,
      [rolloutId, index, WaveStatus.Soaking, JSON.stringify({ acceptedBy }), WaveStatus.Failed],
    );
  }

  /** Approves the first wave that requires an approval and has none yet. @returns its index, or null */
  async approveNextWave(manager: EntityManager, rolloutId: string, approvedBy: string): Promise<number | null> {
    const list = await returningRows<{ index: number }>(
      manager,
      `UPDATE rollout_waves SET approved_by = $2, approved_at = now()
        WHERE rollout_id = $1 AND index = (
          SELECT min(index) FROM rollout_waves
           WHERE rollout_id = $1 AND requires_approval AND approved_at IS NULL AND status IN ($3, $4))
        RETURNING index`,
      [rolloutId, approvedBy, WaveStatus.Pending, WaveStatus.AwaitingApproval],
    );
    return list[0]?.index ?? null;
  }

  /** Retry: a judged wave (failed, succeeded, soaking) runs again, to be judged once the retried devices report. */
  async reopenWave(manager: EntityManager, rolloutId: string, index: number): Promise<void> {
    await manager.query(
      `UPDATE rollout_waves SET status = $3, finished_at = NULL, soak_until = NULL WHERE rollout_id = $1 AND index = $2 AND status IN ($4, $5, $6)`,
      [rolloutId, index, WaveStatus.Running, WaveStatus.Failed, WaveStatus.Succeeded, WaveStatus.Soaking],
    );
  }

  async markWaveAwaitingApproval(manager: EntityManager, rolloutId: string, index: number): Promise<void> {
    await this.setWave(manager, rolloutId, index, `status = $3`, [WaveStatus.AwaitingApproval]);
  }

  async startWave(manager: EntityManager, rolloutId: string, index: number): Promise<void> {
    await this.setWave(manager, rolloutId, index, `status = $3, started_at = now()`, [WaveStatus.Running]);
  }

  /** The wave met its criterion: it soaks for `soakSeconds` from now. */
  async soakWave(
    manager: EntityManager,
    rolloutId: string,
    index: number,
    soakSeconds: number,
    verdict: object,
  ): Promise<void> {
    await this.setWave(
      manager,
      rolloutId,
      index,
      `status = $3, soak_until = now() + make_interval(secs => $4), verdict = $5`,
      [WaveStatus.Soaking, soakSeconds, verdict],
    );
  }

  async failWave(manager: EntityManager, rolloutId: string, index: number, verdict: object): Promise<void> {
    await this.setWave(manager, rolloutId, index, `status = $3, finished_at = now(), verdict = $4`, [
      WaveStatus.Failed,
      verdict,
    ]);
  }

  async succeedWave(manager: EntityManager, rolloutId: string, index: number): Promise<void> {
    await this.setWave(manager, rolloutId, index, `status = $3, finished_at = now()`, [WaveStatus.Succeeded]);
  }

  /** Whether a soak that ends at `soakUntil` is over by the database's clock (the one every replica shares). */
  async isPast(manager: EntityManager, soakUntil: Date | null): Promise<boolean> {
    const [{ over }] = (await manager.query(`SELECT $1::timestamptz <= now() AS over`, [soakUntil])) as {
      over: boolean;
    }[];
    return over;
  }

  /** pg_try_advisory_lock on the leader's own session. @returns whether this session holds the lock now */
  async tryEngineLock(runner: QueryRunner): Promise<boolean> {
    const [{ locked }] = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [
      ROLLOUT_ENGINE_LOCK_KEY.toString(),
    ])) as { locked: boolean }[];
    return locked;
  }

  /** Throws when the lock's session is gone (and the lock with it). */
  async pingEngineLock(runner: QueryRunner): Promise<void> {
    await runner.query('SELECT 1');
  }

  async releaseEngineLock(runner: QueryRunner): Promise<void> {
    await runner.query('SELECT pg_advisory_unlock($1)', [ROLLOUT_ENGINE_LOCK_KEY.toString()]);
  }

  private async setWave(
    manager: EntityManager,
    rolloutId: string,
    index: number,
    fields: string,
    params: unknown[],
  ): Promise<void> {
    await manager.query(`UPDATE rollout_waves SET ${fields} WHERE rollout_id = $1 AND index = $2`, [
      rolloutId,
      index,
      ...params,
    ]);
  }
}
