import { CommitCommand, ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '@cowroot/device';
import { CommandContext } from './command-context';
import { assertNoTrialInProgress, assertRebootPolicy, stageTrial } from './trial-staging';

/**
 * commit (docs/agent.md §4): the rw workspace as a new read-only snapshot, tried like an update. Refused
 * when the device config disables it (`allowCommit: false`). The new snapshot has the security version of
 * the snapshot its workspace was made from.
 */
export async function runCommit(ctx: CommandContext, command: CommitCommand): Promise<void> {
  if (!ctx.config.allowCommit) {
    throw new DeviceError(ErrorCode.CommandDisabled, 'commit is disabled on this device (allowCommit: false)');
  }
  assertRebootPolicy(command.reboot);
  await assertNoTrialInProgress(ctx);
  if (command.label) ctx.logger.info('commit label', { commandId: command.commandId, label: command.label });
  const snapshot = await ctx.core.store.commitWorkspace(command.snapshot);
  const origin = ctx.core.switcher.boot.snapshot;
  if (origin) await ctx.security.remember(snapshot.id, ctx.security.recordOf(origin));
  await ctx.publishState();
  await stageTrial(ctx, command.commandId, snapshot.id, command.reboot, {});
}
