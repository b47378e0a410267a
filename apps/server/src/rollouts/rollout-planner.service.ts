import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { DeviceSelector, selectorCondition } from './device-selector';
import { ExecutionState } from './execution-state';
import { cumulativeWaveBounds, WaveSize } from './wave-sizing';

export interface PlanInput {
  rolloutId: string;
  selector: DeviceSelector;
  /** `name@version`: devices already booted into it are not targeted */
  releaseRef: string;
  waves: readonly WaveSize[];
  randomize: boolean;
}

/**
 * Places targeted devices into waves with set-based SQL (one INSERT … SELECT, no query per device), so
 * a 10k-device fleet is planned in one statement. The order within the rollout is random unless the
 * operator asked otherwise; it is also the dispatch order.
 */
@Injectable()
export class RolloutPlanner {
  /** Plans every device the selector matches now. @returns planned device count per wave */
  async planAll(manager: EntityManager, input: PlanInput): Promise<number[]> {
    const condition = selectorCondition(input.selector, 'd', 2);
    const [{ total }] = (await manager.query(
      `SELECT count(*)::int AS total FROM devices d WHERE ${condition.sql} AND d.booted_release IS DISTINCT FROM $1`,
      [input.releaseRef, ...condition.params],
    )) as { total: number }[];
    const bounds = cumulativeWaveBounds(input.waves, total);
    const last = bounds[bounds.length - 1] ?? 0;
    if (last === 0) return bounds.map(() => 0);
    const order = input.randomize ? 'random()' : 'd.id';
    const base = 2 + condition.params.length;
    await manager.query(
      `WITH ranked AS (
         SELECT d.id, row_number() OVER (ORDER BY ${order})::int AS position
           FROM devices d
          WHERE ${condition.sql} AND d.booted_release IS DISTINCT FROM $1
       )
       INSERT INTO rollout_executions (id, rollout_id, wave_index, device_id, order_key, state)
       SELECT gen_random_uuid(), $${base},
              (SELECT min(b.i)::int - 1 FROM unnest($${base + 1}::int[]) WITH ORDINALITY AS b(bound, i) WHERE r.position <= b.bound),
              r.id, r.position, '${ExecutionState.Queued}'
         FROM ranked r
        WHERE r.position <= $${base + 2}`,
      [input.releaseRef, ...condition.params, input.rolloutId, bounds, last],
    );
    await this.recordQueued(manager, input.rolloutId, null);
    return bounds.map((bound, i) => bound - (i === 0 ? 0 : bounds[i - 1]));
  }

  /**
   * Continuous mode: devices that match the selector now (new registrations, tag changes) and are not
   * part of the rollout yet join its last wave, after everyone planned before them.
   * @returns the device ids that joined
   */
  async joinNewDevices(
    manager: EntityManager,
    input: Omit<PlanInput, 'waves'> & { lastWave: number },
  ): Promise<string[]> {
    const condition = selectorCondition(input.selector, 'd', 3);
    const rows = (await manager.query(
      `WITH newcomers AS (
         SELECT d.id, row_number() OVER (ORDER BY ${input.randomize ? 'random()' : 'd.id'})::int AS position
           FROM devices d
          WHERE ${condition.sql}
            AND d.booted_release IS DISTINCT FROM $1
            AND NOT EXISTS (SELECT 1 FROM rollout_executions x WHERE x.rollout_id = $2 AND x.device_id = d.id)
       ), base AS (
         SELECT coalesce(max(order_key), 0) AS top FROM rollout_executions WHERE rollout_id = $2
       )
       INSERT INTO rollout_executions (id, rollout_id, wave_index, device_id, order_key, state)
       SELECT gen_random_uuid(), $2, $${3 + condition.params.length}, n.id, base.top + n.position, '${ExecutionState.Queued}'
         FROM newcomers n CROSS JOIN base
       ON CONFLICT (rollout_id, device_id) DO NOTHING
       RETURNING id, device_id`,
      [input.releaseRef, input.rolloutId, ...condition.params, input.lastWave],
    )) as { id: string; device_id: string }[];
    if (rows.length > 0)
      await this.recordQueued(
        manager,
        input.rolloutId,
        rows.map((row) => row.id),
      );
    return rows.map((row) => row.device_id);
  }

  private async recordQueued(manager: EntityManager, rolloutId: string, executionIds: string[] | null): Promise<void> {
    await manager.query(
      `INSERT INTO rollout_execution_history (execution_id, attempt, from_state, to_state, detail)
       SELECT x.id, x.attempt, NULL, x.state, jsonb_build_object('wave', x.wave_index, 'reason', $3::text)
         FROM rollout_executions x
        WHERE x.rollout_id = $1 AND ($2::uuid[] IS NULL OR x.id = ANY ($2::uuid[]))`,
      [rolloutId, executionIds, executionIds ? 'joined (continuous mode)' : 'planned'],
    );
  }
}
