import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AttentionItemDto, FleetSummaryDto, ReleaseDeviceCountDto } from './dto/fleet-summary.dto';

/** A device unheard of for this long is "offline for long" in the needs-attention list. */
export const OFFLINE_ATTENTION_MS = 60 * 60 * 1000;
const PER_REASON = 25;
const FAILED_STATES = ['rejected-by-health-check', 'rolled-back-by-bootloader', 'failed', 'timed-out'];

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

/**
 * The dashboard's fleet overview in one answer. Read-only aggregate queries over the devices and rollouts
 * tables (indexes: devices_online_idx, devices_booted_release_idx, rollouts_active_idx); the owning
 * features' services have no aggregate reads, and these queries change nothing.
 */
@Injectable()
export class FleetSummaryService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async summary(now = new Date()): Promise<FleetSummaryDto> {
    const [devices, booted, rollouts, attention] = await Promise.all([
      this.dataSource.query(`SELECT status, online, count(*)::int AS count FROM devices GROUP BY 1, 2 ORDER BY 1, 2`),
      this.dataSource.query(
        `SELECT booted_release AS release, count(*)::int AS count FROM devices WHERE status = 'active'
          GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20`,
      ),
      this.dataSource.query(
        `SELECT r.id, r.name, r.status, r.status_reason, r.release_name || '@' || r.release_version AS release,
                r.current_wave,
                (SELECT count(*)::int FROM rollout_waves w WHERE w.rollout_id = r.id) AS waves,
                (SELECT count(*)::int FROM rollout_executions e WHERE e.rollout_id = r.id) AS total,
                (SELECT count(*)::int FROM rollout_executions e WHERE e.rollout_id = r.id AND e.state = 'confirmed') AS confirmed,
                (SELECT count(*)::int FROM rollout_executions e WHERE e.rollout_id = r.id AND e.state = ANY ($1)) AS failed
           FROM rollouts r WHERE r.status IN ('running', 'paused', 'aborted') ORDER BY r.created_at DESC LIMIT 50`,
        [FAILED_STATES],
      ),
      this.attention(now),
    ]);
    return {
      total: (devices as Array<{ count: number }>).reduce((sum, row) => sum + row.count, 0),
      devices,
      bootedReleases: booted,
      rollouts: (rollouts as Array<Record<string, unknown>>).map((row) => ({
        id: row.id as string,
        name: row.name as string,
        status: row.status as string,
        statusReason: row.status_reason as string | null,
        release: row.release as string,
        currentWave: row.current_wave as number,
        waves: row.waves as number,
        total: row.total as number,
        confirmed: row.confirmed as number,
        failed: row.failed as number,
      })),
      needsAttention: attention,
    };
  }

  /** Per release: devices that run it and devices that hold a snapshot of it (the releases page). */
  async releaseUsage(): Promise<ReleaseDeviceCountDto[]> {
    const rows = (await this.dataSource.query(
      `WITH held AS (
         SELECT DISTINCT d.id, (s->'release'->>'name') || '@' || (s->'release'->>'version') AS release
           FROM devices d, jsonb_array_elements(d.snapshots) s
          WHERE d.status = 'active' AND s->'release' IS NOT NULL AND jsonb_typeof(s->'release') = 'object'
       ), running AS (
         SELECT booted_release AS release, count(*)::int AS n FROM devices
          WHERE status = 'active' AND booted_release IS NOT NULL GROUP BY 1
       ), holding AS (SELECT release, count(*)::int AS n FROM held GROUP BY 1)
       SELECT coalesce(r.release, h.release) AS release, coalesce(r.n, 0) AS running, coalesce(h.n, 0) AS holding
         FROM running r FULL JOIN holding h ON h.release = r.release ORDER BY 1`,
    )) as ReleaseDeviceCountDto[];
    return rows;
  }

  private async attention(now: Date): Promise<AttentionItemDto[]> {
    const offlineBefore = new Date(now.getTime() - OFFLINE_ATTENTION_MS);
    const [rolledBack, failed, offline, pending] = (await Promise.all([
      this.dataSource.query(
        `SELECT id AS device_id, last_trial_result AS result, state_received_at AS since FROM devices
          WHERE status = 'active' AND last_trial_result->>'outcome' IN ('bootloader-fallback', 'health-rejected', 'kernel-load-failed')
          ORDER BY state_received_at DESC NULLS LAST LIMIT ${PER_REASON}`,
      ),
      this.dataSource.query(
        `SELECT e.device_id, e.state, e.failure_reason, e.finished_at AS since, r.name AS rollout FROM rollout_executions e
           JOIN rollouts r ON r.id = e.rollout_id
          WHERE r.status IN ('running', 'paused', 'aborted') AND e.state = ANY ($1)
          ORDER BY e.finished_at DESC NULLS LAST LIMIT ${PER_REASON}`,
        [FAILED_STATES],
      ),
      this.dataSource.query(
        `SELECT id AS device_id, last_seen_at AS since FROM devices
          WHERE status = 'active' AND NOT online AND last_seen_at < $1 ORDER BY last_seen_at LIMIT ${PER_REASON}`,
        [offlineBefore],
      ),
      this.dataSource.query(
        `SELECT id AS device_id, pending_trial AS trial, state_received_at AS since FROM devices
          WHERE status = 'active' AND pending_trial IS NOT NULL ORDER BY state_received_at DESC NULLS LAST LIMIT ${PER_REASON}`,
      ),
    ])) as Array<Array<Record<string, unknown>>>;
    const item = (row: Record<string, unknown>, reason: AttentionItemDto['reason'], detail: string) => ({
      deviceId: row.device_id as string,
      reason,
      detail,
      since: iso(row.since as Date | null),
    });
    return [
      ...rolledBack.map((row) => {
        const result = row.result as { outcome: string; check?: string; snapshot: string };
        return item(
          row,
          'rolled-back',
          `${result.outcome}${result.check ? ` (${result.check})` : ''} of ${result.snapshot}`,
        );
      }),
      ...failed.map((row) =>
        item(row, 'failed', `${row.state} in ${row.rollout}${row.failure_reason ? `: ${row.failure_reason}` : ''}`),
      ),
      ...offline.map((row) => item(row, 'offline', 'not heard from for over an hour')),
      ...pending.map((row) =>
        item(row, 'pending-trial', `trial of ${(row.trial as { snapshot?: string }).snapshot ?? '?'} pending`),
      ),
    ];
  }
}
