import { JobEventType, RollbackCause } from '@cowroot/protocol';
import {
  ExecutionState,
  FailureKind,
  failureKindOf,
  isFinished,
  nextExecutionState,
  stateOfEvent,
} from './execution-state';

describe('nextExecutionState', () => {
  it('follows a successful install to confirmed, and only confirmed is success', () => {
    let state = ExecutionState.Notified;
    const steps: [JobEventType, ExecutionState][] = [
      [JobEventType.Progress, ExecutionState.Downloading],
      [JobEventType.Staged, ExecutionState.Installed],
      [JobEventType.Rebooting, ExecutionState.Rebooting],
      [JobEventType.Confirmed, ExecutionState.Confirmed],
    ];
    for (const [type, expected] of steps) {
      state = nextExecutionState(state, { type }) ?? state;
      expect(state).toBe(expected);
    }
    expect(failureKindOf(ExecutionState.Installed)).toBeNull();
    expect(isFinished(ExecutionState.Rebooting)).toBe(false);
  });

  it('never goes backwards: late and duplicated events are ignored', () => {
    expect(nextExecutionState(ExecutionState.Rebooting, { type: JobEventType.Progress })).toBeNull();
    expect(nextExecutionState(ExecutionState.Installed, { type: JobEventType.Staged })).toBeNull();
    expect(nextExecutionState(ExecutionState.Confirmed, { type: JobEventType.Failed })).toBeNull();
    expect(nextExecutionState(ExecutionState.Confirmed, { type: JobEventType.Accepted })).toBeNull();
  });

  it('jumps forward over missed events (out of order arrival)', () => {
    expect(nextExecutionState(ExecutionState.Notified, { type: JobEventType.Confirmed })).toBe(
      ExecutionState.Confirmed,
    );
    expect(nextExecutionState(ExecutionState.Confirmed, { type: JobEventType.Rebooting })).toBeNull();
  });

  it('counts a health-check rejection once although rejected and rolled-back both arrive', () => {
    const rejected = nextExecutionState(ExecutionState.Rebooting, { type: JobEventType.Rejected });
    expect(rejected).toBe(ExecutionState.RejectedByHealthCheck);
    expect(
      nextExecutionState(rejected!, { type: JobEventType.RolledBack, rollback: { by: RollbackCause.HealthCheck } }),
    ).toBeNull();
  });

  it('tells bootloader and kernel-load fallbacks from health-check rejections', () => {
    expect(stateOfEvent({ type: JobEventType.RolledBack, rollback: { by: RollbackCause.Bootloader } })).toBe(
      ExecutionState.RolledBackByBootloader,
    );
    expect(stateOfEvent({ type: JobEventType.RolledBack, rollback: { by: RollbackCause.KernelLoad } })).toBe(
      ExecutionState.RolledBackByBootloader,
    );
    expect(stateOfEvent({ type: JobEventType.RolledBack, rollback: { by: RollbackCause.HealthCheck } })).toBe(
      ExecutionState.RejectedByHealthCheck,
    );
    expect(stateOfEvent({ type: JobEventType.Completed })).toBeNull();
  });

  it("lets a device's real outcome replace the server's timeout verdict", () => {
    expect(nextExecutionState(ExecutionState.TimedOut, { type: JobEventType.Confirmed })).toBe(
      ExecutionState.Confirmed,
    );
    expect(nextExecutionState(ExecutionState.TimedOut, { type: JobEventType.Rebooting })).toBeNull();
  });

  it('maps failure states to abort rule kinds', () => {
    expect(failureKindOf(ExecutionState.Failed)).toBe(FailureKind.Download);
    expect(failureKindOf(ExecutionState.RejectedByHealthCheck)).toBe(FailureKind.HealthCheck);
    expect(failureKindOf(ExecutionState.RolledBackByBootloader)).toBe(FailureKind.Bootloader);
    expect(failureKindOf(ExecutionState.TimedOut)).toBe(FailureKind.Timeout);
    expect(failureKindOf(ExecutionState.Canceled)).toBeNull();
  });
});
