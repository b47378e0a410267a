import { EntityManager } from 'typeorm';
import { ExecutionState } from './execution-state';

/** One row of rollout_execution_history: an execution's transition and why. */
export interface HistoryEntry {
  executionId: string;
  attempt: number;
  from: ExecutionState | null;
  to: ExecutionState;
  /** the job event that caused it; a second entry for one event id is dropped */
  eventId?: string | null;
  commandId?: string | null;
  detail: Record<string, unknown>;
}

/**
 * The one INSERT into rollout_execution_history (planning, dispatch, events, timeouts, cancels, retries,
 * reverts all write through it): one statement whatever the number of entries. Entries whose event id is
 * already recorded are skipped; returns the event ids that were inserted.
 */
export async function recordHistory(manager: EntityManager, entries: HistoryEntry[]): Promise<Set<string>> {
  if (entries.length === 0) return new Set();
  const rows = (await manager.query(
    `INSERT INTO rollout_execution_history (execution_id, attempt, from_state, to_state, event_id, command_id, detail)
     SELECT u.execution_id, u.attempt, u.from_state, u.to_state, u.event_id, u.command_id, u.detail::jsonb
       FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[])
            AS u(execution_id, attempt, from_state, to_state, event_id, command_id, detail)
     ON CONFLICT (event_id) DO NOTHING
     RETURNING event_id`,
    [
      entries.map((e) => e.executionId),
      entries.map((e) => e.attempt),
      entries.map((e) => e.from),
      entries.map((e) => e.to),
      entries.map((e) => e.eventId ?? null),
      entries.map((e) => e.commandId ?? null),
      entries.map((e) => JSON.stringify(e.detail)),
    ],
  )) as { event_id: string | null }[];
  return new Set(rows.flatMap((row) => (row.event_id ? [row.event_id] : [])));
}
