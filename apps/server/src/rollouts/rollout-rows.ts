import { RebootMode } from '@cowroot/protocol';
import { AbortRule, FiredAt } from './abort-rules';
import { DeviceSelector } from './device-selector';
import { ExecutionState } from './execution-state';

export enum RolloutStatus {
  Running = 'running',
  /** stopped by an operator, a missed wave criterion or a pause rule; devices in flight still report */
  Paused = 'paused',
  Completed = 'completed',
  Canceled = 'canceled',
  /** stopped by a revert rule: confirmed devices are switched back */
  Aborted = 'aborted',
}

export enum WaveStatus {
  Pending = 'pending',
  AwaitingApproval = 'awaiting-approval',
  Running = 'running',
  Soaking = 'soaking',
  Succeeded = 'succeeded',
  Failed = 'failed',
}

/** A `rollouts` row as the pg driver returns it. */
export interface RolloutRow {
  id: string;
  name: string;
  release_id: string;
  release_name: string;
  release_version: string;
  selector: DeviceSelector;
  abort_rules: AbortRule[];
  abort_fired: FiredAt;
  dispatch_per_minute: number | null;
  randomize: boolean;
  continuous: boolean;
  reboot_mode: RebootMode;
  status: RolloutStatus;
  status_reason: string | null;
  current_wave: number;
  created_by: string;
  created_by_name: string;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

export interface WaveRow {
  rollout_id: string;
  index: number;
  size_kind: 'count' | 'percent';
  size_value: number;
  success_percent: number;
  timeout_seconds: number;
  soak_seconds: number;
  requires_approval: boolean;
  status: WaveStatus;
  approved_by: string | null;
  approved_at: Date | null;
  started_at: Date | null;
  soak_until: Date | null;
  finished_at: Date | null;
  verdict: Record<string, unknown> | null;
}

export interface ExecutionRow {
  id: string;
  rollout_id: string;
  wave_index: number;
  device_id: string;
  order_key: number;
  state: ExecutionState;
  attempt: number;
  command_id: string | null;
  command_type: string | null;
  artifact_id: string | null;
  artifact_file: string | null;
  artifact_kind: string | null;
  artifact_bytes: string | null;
  from_snapshot: string | null;
  target_snapshot: string | null;
  failure_reason: string | null;
  created_at: Date;
  updated_at: Date;
  dispatched_at: Date | null;
  deadline_at: Date | null;
  finished_at: Date | null;
  revert_command_id: string | null;
  revert_state: ExecutionState | null;
}

export const ACTIVE_ROLLOUT_STATUSES: readonly RolloutStatus[] = [
  RolloutStatus.Running,
  RolloutStatus.Paused,
  RolloutStatus.Aborted,
];

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

/** A `rollout_execution_history` row as the execution detail reads it (historyView). */
export interface HistoryRow {
  at: Date;
  attempt: number;
  from_state: ExecutionState | null;
  to_state: ExecutionState;
  event_id: string | null;
  command_id: string | null;
  detail: Record<string, unknown>;
}
