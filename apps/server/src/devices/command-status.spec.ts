import { JobEventType } from '@cowroot/protocol';
import { CommandStatus, isTerminal, nextCommandStatus } from './command-status';

describe('nextCommandStatus', () => {
  it('moves an unacknowledged command forward through the normal install sequence', () => {
    let status = CommandStatus.Sent;
    for (const [event, expected] of [
      [JobEventType.Accepted, CommandStatus.Accepted],
      [JobEventType.Progress, CommandStatus.InProgress],
      [JobEventType.Staged, CommandStatus.Staged],
      [JobEventType.Rebooting, CommandStatus.Rebooting],
      [JobEventType.Confirmed, CommandStatus.Confirmed],
    ] as const) {
      const next = nextCommandStatus(status, event);
      expect(next).toBe(expected);
      status = next!;
    }
    expect(isTerminal(status)).toBe(true);
  });

  it('ignores duplicated and late events instead of moving backwards', () => {
    expect(nextCommandStatus(CommandStatus.Accepted, JobEventType.Accepted)).toBeNull();
    expect(nextCommandStatus(CommandStatus.Staged, JobEventType.Progress)).toBeNull();
    expect(nextCommandStatus(CommandStatus.InProgress, JobEventType.Progress)).toBeNull();
    expect(nextCommandStatus(CommandStatus.Confirmed, JobEventType.Failed)).toBeNull();
    expect(nextCommandStatus(CommandStatus.RolledBack, JobEventType.Confirmed)).toBeNull();
  });

  it('lets a rejection be followed by the rollback report of the fallback boot', () => {
    expect(nextCommandStatus(CommandStatus.Rebooting, JobEventType.Rejected)).toBe(CommandStatus.Rejected);
    expect(nextCommandStatus(CommandStatus.Rejected, JobEventType.RolledBack)).toBe(CommandStatus.RolledBack);
  });

  it('accepts a terminal event for a command that was never acknowledged (the accepted event was lost)', () => {
    expect(nextCommandStatus(CommandStatus.Queued, JobEventType.Completed)).toBe(CommandStatus.Completed);
  });
});
