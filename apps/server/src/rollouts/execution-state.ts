import { JobEventType } from '@cowroot/protocol';

/**
 * Where one device stands in one rollout (docs/rollouts.md "Execution states"). Only `confirmed` is success:
 * the device booted the new snapshot and its health checks passed. `installed` (staged) and `rebooting` are
 * not success.
 */
export enum ExecutionState {
  /** planned into a wave, no command sent yet */
  Queued = 'queued',
  /** command stored and published (or waiting in the device's queue) */
  Notified = 'notified',
  Downloading = 'downloading',
  /** the new snapshot is on disk and a trial is requested */
  Installed = 'installed',
  Rebooting = 'rebooting',
  Confirmed = 'confirmed',
  RejectedByHealthCheck = 'rejected-by-health-check',
  RolledBackByBootloader = 'rolled-back-by-bootloader',
  Failed = 'failed',
  TimedOut = 'timed-out',
  Canceled = 'canceled',
}

/** What an abort rule counts. `any` = every failure kind together. */
export enum FailureKind {
  /** download, verify, receive or any other failure before a switch */
  Download = 'download',
  HealthCheck = 'health-check',
  Bootloader = 'bootloader',
  Timeout = 'timeout',
  Any = 'any',
}

/**
 * A state never moves to a lower rank, so duplicated, late and out-of-order events are harmless.
 * The server's own verdicts (timed-out, canceled) rank below the device's outcomes: a device that reports
 * after its deadline still gets its real outcome recorded (a late confirmation must be reverted too).
 */
const RANK: Record<ExecutionState, number> = {
  [ExecutionState.Queued]: 0,
  [ExecutionState.Notified]: 1,
  [ExecutionState.Downloading]: 2,
  [ExecutionState.Installed]: 3,
  [ExecutionState.Rebooting]: 4,
  [ExecutionState.TimedOut]: 5,
  [ExecutionState.Canceled]: 5,
  [ExecutionState.Confirmed]: 6,
  [ExecutionState.RejectedByHealthCheck]: 6,
  [ExecutionState.RolledBackByBootloader]: 6,
  [ExecutionState.Failed]: 6,
};

export const IN_FLIGHT_STATES: readonly ExecutionState[] = [
  ExecutionState.Notified,
  ExecutionState.Downloading,
  ExecutionState.Installed,
  ExecutionState.Rebooting,
];

export const FAILURE_STATES: readonly ExecutionState[] = [
  ExecutionState.Failed,
  ExecutionState.RejectedByHealthCheck,
  ExecutionState.RolledBackByBootloader,
  ExecutionState.TimedOut,
];

export function isFinished(state: ExecutionState): boolean {
  return RANK[state] >= 5;
}

export function failureKindOf(state: ExecutionState): FailureKind | null {
  switch (state) {
    case ExecutionState.Failed:
      return FailureKind.Download;
    case ExecutionState.RejectedByHealthCheck:
      return FailureKind.HealthCheck;
    case ExecutionState.RolledBackByBootloader:
      return FailureKind.Bootloader;
    case ExecutionState.TimedOut:
      return FailureKind.Timeout;
    default:
      return null;
  }
}

/** The parts of a job event (docs/protocol.md §5.2) that decide the execution state. */
export interface ExecutionEvent {
  type: JobEventType | string;
  rollback?: { by?: string } | null;
}

/** The state a job event stands for, or null when it says nothing about progress (e.g. `completed`). */
export function stateOfEvent(event: ExecutionEvent): ExecutionState | null {
  switch (event.type) {
    case JobEventType.Accepted:
      return ExecutionState.Notified;
    case JobEventType.Progress:
      return ExecutionState.Downloading;
    case JobEventType.Staged:
      return ExecutionState.Installed;
    case JobEventType.Rebooting:
      return ExecutionState.Rebooting;
    case JobEventType.Confirmed:
      return ExecutionState.Confirmed;
    case JobEventType.Rejected:
      return ExecutionState.RejectedByHealthCheck;
    case JobEventType.RolledBack:
      // health-check: the trial booted but a required check failed; bootloader/kernel-load: it never came up
      return event.rollback?.by === 'health-check'
        ? ExecutionState.RejectedByHealthCheck
        : ExecutionState.RolledBackByBootloader;
    case JobEventType.Failed:
      return ExecutionState.Failed;
    case JobEventType.Canceled:
      return ExecutionState.Canceled;
    default:
      return null;
  }
}

/**
 * The state after `event`, or null when the event does not move the execution forward: a duplicate, a
 * late progress report after `installed`, anything after a device outcome. A health-check `rejected`
 * followed by `rolled-back` (by health-check) is one outcome, counted once.
 */
export function nextExecutionState(current: ExecutionState, event: ExecutionEvent): ExecutionState | null {
  const next = stateOfEvent(event);
  if (next === null || RANK[current] >= 6) return null;
  return RANK[next] > RANK[current] ? next : null;
}
