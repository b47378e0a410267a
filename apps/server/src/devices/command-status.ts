import { JobEventType } from '@cowroot/protocol';

/**
 * Where a command stands on the server. `queued` and `sent` mean the device has not acknowledged it yet
 * (it is re-sent when the device subscribes again); the rest mirror the job events of docs/protocol.md §5.2.
 */
export enum CommandStatus {
  /** stored; the device was not connected when it was issued */
  Queued = 'queued',
  /** published to a connected device, not acknowledged yet */
  Sent = 'sent',
  Accepted = 'accepted',
  InProgress = 'in-progress',
  Staged = 'staged',
  Rebooting = 'rebooting',
  Rejected = 'rejected',
  Confirmed = 'confirmed',
  RolledBack = 'rolled-back',
  Failed = 'failed',
  Canceled = 'canceled',
  Completed = 'completed',
}

const STATUS_OF_EVENT: Record<JobEventType, CommandStatus> = {
  [JobEventType.Accepted]: CommandStatus.Accepted,
  [JobEventType.Progress]: CommandStatus.InProgress,
  [JobEventType.Staged]: CommandStatus.Staged,
  [JobEventType.Rebooting]: CommandStatus.Rebooting,
  [JobEventType.Rejected]: CommandStatus.Rejected,
  [JobEventType.Confirmed]: CommandStatus.Confirmed,
  [JobEventType.RolledBack]: CommandStatus.RolledBack,
  [JobEventType.Failed]: CommandStatus.Failed,
  [JobEventType.Canceled]: CommandStatus.Canceled,
  [JobEventType.Completed]: CommandStatus.Completed,
};

/** Later stages rank higher; a status never moves to a lower rank, so late or duplicated events are harmless. */
const RANK: Record<CommandStatus, number> = {
  [CommandStatus.Queued]: 0,
  [CommandStatus.Sent]: 1,
  [CommandStatus.Accepted]: 2,
  [CommandStatus.InProgress]: 3,
  [CommandStatus.Staged]: 4,
  [CommandStatus.Rebooting]: 5,
  // a health-check rejection is followed by `rolled-back` after the fallback boot
  [CommandStatus.Rejected]: 6,
  [CommandStatus.Confirmed]: 7,
  [CommandStatus.RolledBack]: 7,
  [CommandStatus.Failed]: 7,
  [CommandStatus.Canceled]: 7,
  [CommandStatus.Completed]: 7,
};

export const UNDELIVERED_STATUSES: readonly CommandStatus[] = [CommandStatus.Queued, CommandStatus.Sent];

export function isTerminal(status: CommandStatus): boolean {
  return RANK[status] === 7;
}

/**
 * The status after `event`, or null when the event does not move the command forward (a duplicate, a late
 * progress report after `staged`, anything after a terminal status).
 */
export function nextCommandStatus(current: CommandStatus, event: JobEventType): CommandStatus | null {
  const next = STATUS_OF_EVENT[event];
  if (isTerminal(current)) return null;
  return RANK[next] > RANK[current] ? next : null;
}
