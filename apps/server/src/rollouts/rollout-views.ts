import { ExecutionRow, HistoryRow, RolloutRow, WaveRow } from './rollout-rows';
import { StateCounts } from './wave-criterion';
import { ExecutionDto, ExecutionHistoryDto, RolloutDto, RolloutWaveDto } from './dto/rollout.dto';

// What the REST API answers about a rollout (and the CLI shows): the response DTOs themselves, so the
// views and the documented schema cannot drift apart.
export type RolloutView = RolloutDto;
export type WaveView = RolloutWaveDto;
export type ExecutionView = ExecutionDto;
export type HistoryView = ExecutionHistoryDto;

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

export function waveView(wave: WaveRow, counts: StateCounts): WaveView {
  return {
    index: wave.index,
    size: { kind: wave.size_kind, value: wave.size_value },
    successPercent: wave.success_percent,
    timeoutSeconds: wave.timeout_seconds,
    soakSeconds: wave.soak_seconds,
    requiresApproval: wave.requires_approval,
    status: wave.status,
    approvedBy: wave.approved_by,
    approvedAt: iso(wave.approved_at),
    startedAt: iso(wave.started_at),
    soakUntil: iso(wave.soak_until),
    finishedAt: iso(wave.finished_at),
    verdict: wave.verdict,
    total: Object.values(counts).reduce((sum, n) => sum + (n ?? 0), 0),
    counts,
  };
}

export function rolloutView(rollout: RolloutRow, waves: WaveView[], counts: StateCounts): RolloutView {
  return {
    id: rollout.id,
    name: rollout.name,
    release: { name: rollout.release_name, version: rollout.release_version },
    selector: rollout.selector,
    status: rollout.status,
    statusReason: rollout.status_reason,
    currentWave: rollout.current_wave,
    continuous: rollout.continuous,
    randomize: rollout.randomize,
    dispatchPerMinute: rollout.dispatch_per_minute,
    rebootMode: rollout.reboot_mode,
    abortRules: rollout.abort_rules,
    createdBy: rollout.created_by_name,
    createdAt: iso(rollout.created_at)!,
    updatedAt: iso(rollout.updated_at)!,
    finishedAt: iso(rollout.finished_at),
    total: Object.values(counts).reduce((sum, n) => sum + (n ?? 0), 0),
    counts,
    waves,
  };
}

export function executionView(row: ExecutionRow): ExecutionView {
  return {
    id: row.id,
    rolloutId: row.rollout_id,
    deviceId: row.device_id,
    wave: row.wave_index,
    state: row.state,
    attempt: row.attempt,
    commandId: row.command_id,
    commandType: row.command_type,
    artifact: row.command_id
      ? {
          id: row.artifact_id,
          file: row.artifact_file,
          kind: row.artifact_kind,
          bytes: Number(row.artifact_bytes ?? 0),
        }
      : null,
    fromSnapshot: row.from_snapshot,
    targetSnapshot: row.target_snapshot,
    failureReason: row.failure_reason,
    dispatchedAt: iso(row.dispatched_at),
    deadlineAt: iso(row.deadline_at),
    finishedAt: iso(row.finished_at),
    revert: row.revert_state ? { commandId: row.revert_command_id, state: row.revert_state } : null,
  };
}

export function historyView(row: HistoryRow): HistoryView {
  return {
    at: iso(row.at)!,
    attempt: row.attempt,
    from: row.from_state,
    to: row.to_state,
    eventId: row.event_id,
    commandId: row.command_id,
    detail: row.detail,
  };
}
