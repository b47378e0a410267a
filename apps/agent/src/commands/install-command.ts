import { InstallCommand, JobEventType, JobPhase } from '@cowroot/protocol';
import { rateLimitedProgress, verifyOffer } from '../install/install-job';
import { securityRecordOf } from '../security/downgrade-guard';
import { CommandContext } from './command-context';
import { assertNoTrialInProgress, assertRebootPolicy, stageTrial } from './trial-staging';

/** install (docs/agent.md §4.1): verify, check the downgrade floor, download, receive, then stage the trial. */
export async function runInstall(ctx: CommandContext, command: InstallCommand, signal: AbortSignal): Promise<void> {
  assertRebootPolicy(command.reboot);
  await assertNoTrialInProgress(ctx);
  // before any download: a replayed old release costs the device nothing (docs/agent.md §4.3)
  const manifest = verifyOffer(command, ctx.config.releasePublicKey);
  const security = securityRecordOf(manifest);
  ctx.security.assertAllowed(`install of ${manifest.release.name} ${manifest.release.version}`, security);
  const progress = rateLimitedProgress((phase: JobPhase, bytesDone: number, bytesTotal: number) => {
    void ctx.events
      .emit(command.commandId, JobEventType.Progress, { progress: { phase, bytesDone, bytesTotal } })
      .catch(() => undefined);
  });
  const outcome = await ctx.installJob.run(command, progress, signal);
  // a held snapshot offered again with a newly signed manifest (e.g. with a rollback allowance) takes it
  await ctx.security.remember(outcome.snapshot.id, security);
  await ctx.publishState();
  await stageTrial(ctx, command.commandId, outcome.snapshot.id, command.reboot, {
    bytesDownloaded: outcome.bytesDownloaded,
  });
}
