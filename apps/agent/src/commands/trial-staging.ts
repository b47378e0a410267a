import { ErrorCode, JobEventType, RebootMode, RebootPolicy } from '@cowroot/protocol';
import { DeviceError, SwitchState } from '@cowroot/device';
import { EventExtra } from '../events/job-events';
import { CommandContext } from './command-context';

/** A `window` reboot needs its window (the protocol allows leaving it out for the other modes). */
export function assertRebootPolicy(policy: RebootPolicy): void {
  if (policy.mode === RebootMode.Window && !policy.window) {
    throw new DeviceError(ErrorCode.MalformedMessage, 'reboot mode "window" needs a window');
  }
}

/** A trial being booted or confirmed blocks new work that would end in another trial. */
export async function assertNoTrialInProgress(ctx: CommandContext): Promise<void> {
  const env = await ctx.core.switcher.readEnv();
  if (env.trial && (env.state === SwitchState.Trying || env.state === SwitchState.Confirmed)) {
    throw new DeviceError(ErrorCode.TrialPending, `snapshot ${env.trial} is being tried (${env.state})`);
  }
}

/**
 * The end of install, switch and commit (docs/agent.md §4): request the trial of `snapshot` (one env
 * write), remember it in the journal, `staged`, then the command's reboot policy. Requesting the confirmed
 * snapshot withdraws a requested trial instead (that command gets `canceled`, this one `completed`); a
 * trial requested by another command is replaced (it gets `canceled`).
 */
export async function stageTrial(
  ctx: CommandContext,
  commandId: string,
  snapshot: string,
  policy: RebootPolicy,
  extra: EventExtra,
): Promise<void> {
  const { switcher } = ctx.core;
  const before = await switcher.readEnv();
  const previousTrial = ctx.journal.trial;
  const written = await switcher.requestTrial(snapshot);
  if (snapshot === before.current) {
    if (written) {
      // asking for the confirmed snapshot withdrew a requested trial: that command is canceled
      if (previousTrial) {
        await ctx.events.emit(previousTrial.commandId, JobEventType.Canceled, { snapshot: previousTrial.snapshot });
        await ctx.reboots.dropScheduled(previousTrial.commandId);
      }
      await ctx.journal.setTrial(null);
    }
    await ctx.events.emit(commandId, JobEventType.Completed, { snapshot });
    return;
  }
  if (previousTrial && previousTrial.commandId !== commandId) {
    await ctx.events.emit(previousTrial.commandId, JobEventType.Canceled, {
      snapshot: previousTrial.snapshot,
      error: { code: ErrorCode.Canceled, message: `replaced by the trial of ${snapshot} (${commandId})` },
    });
  }
  await ctx.journal.setTrial({
    commandId,
    snapshot,
    fallback: before.current || null,
    requestedAt: new Date().toISOString(),
  });
  await ctx.events.emit(commandId, JobEventType.Staged, { snapshot, ...extra });
  await ctx.publishState();
  await ctx.reboots.afterStaging(commandId, policy);
}
