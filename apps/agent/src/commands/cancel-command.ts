import { CancelCommand, ErrorCode, JobEventType } from '@cowroot/protocol';
import { CommandContext } from './command-context';

/**
 * cancel (docs/agent.md §4): a running download or receive of the target is aborted (the job reports
 * `canceled` itself); a trial the target already requested and u-boot has not started is withdrawn with one
 * env write and its window reboot dropped. A trial being booted cannot be canceled: TRIAL_PENDING.
 */
export async function runCancel(ctx: CommandContext, command: CancelCommand): Promise<void> {
  const target = command.targetCommandId;
  const job = ctx.jobs.current?.commandId === target ? ctx.jobs.current : null;
  if (job) {
    // one that had already requested its trial finishes, and the trial is withdrawn below
    job.abort.abort();
    await job.finished;
  }
  const trial = ctx.journal.trial;
  if (trial?.commandId === target) {
    await ctx.core.switcher.cancelTrial(); // TRIAL_PENDING when u-boot already started it
    await ctx.journal.setTrial(null);
    await ctx.reboots.dropScheduled(target);
    await ctx.events.emit(target, JobEventType.Canceled, {
      snapshot: trial.snapshot,
      error: { code: ErrorCode.Canceled, message: `canceled by ${command.commandId}` },
    });
    await ctx.events.emit(command.commandId, JobEventType.Completed);
    return;
  }
  if (!job) ctx.logger.info('nothing to cancel', { commandId: command.commandId, target });
  await ctx.events.emit(command.commandId, JobEventType.Completed);
}
