import { CommitCommand } from '@cowroot/protocol';
import { CommandContext } from './command-context';
import { assertNoTrialInProgress, assertRebootPolicy, stageTrial } from './trial-staging';

/** commit (docs/agent.md §4): the rw workspace as a new read-only snapshot, tried like an update. */
export async function runCommit(ctx: CommandContext, command: CommitCommand): Promise<void> {
  assertRebootPolicy(command.reboot);
  await assertNoTrialInProgress(ctx);
  if (command.label) ctx.logger.info('commit label', { commandId: command.commandId, label: command.label });
  const snapshot = await ctx.core.store.commitWorkspace(command.snapshot);
  await ctx.publishState();
  await stageTrial(ctx, command.commandId, snapshot.id, command.reboot, {});
}
