import { InstallCommand, JobEventType, JobPhase } from '@cowroot/protocol';
import { rateLimitedProgress } from '../install/install-job';
import { CommandContext } from './command-context';
import { assertNoTrialInProgress, assertRebootPolicy, stageTrial } from './trial-staging';

/** install (docs/agent.md §4.1): verify, download, receive, then stage the trial. */
export async function runInstall(ctx: CommandContext, command: InstallCommand, signal: AbortSignal): Promise<void> {
  assertRebootPolicy(command.reboot);
  await assertNoTrialInProgress(ctx);
  const progress = rateLimitedProgress((phase: JobPhase, bytesDone: number, bytesTotal: number) => {
    void ctx.events
      .emit(command.commandId, JobEventType.Progress, { progress: { phase, bytesDone, bytesTotal } })
      .catch(() => undefined);
  });
  const outcome = await ctx.installJob.run(command, progress, signal);
  await ctx.publishState();
  await stageTrial(ctx, command.commandId, outcome.snapshot.id, command.reboot, {
    bytesDownloaded: outcome.bytesDownloaded,
  });
}
