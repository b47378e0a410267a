import { SwitchCommand } from '@cowroot/protocol';
import { CommandContext } from './command-context';
import { assertRebootPolicy, stageTrial } from './trial-staging';

/**
 * switch (docs/agent.md §4): a trial of a snapshot already on the device, unless it is below the downgrade
 * floor (§4.3). Switching to the current snapshot only withdraws a requested trial and is always allowed.
 */
export async function runSwitch(ctx: CommandContext, command: SwitchCommand): Promise<void> {
  assertRebootPolicy(command.reboot);
  if (command.snapshot !== (await ctx.core.switcher.readEnv()).current) {
    ctx.security.assertAllowed(`switch to ${command.snapshot}`, ctx.security.recordOf(command.snapshot));
  }
  await stageTrial(ctx, command.commandId, command.snapshot, command.reboot, {});
}
