import { SwitchCommand } from '@cowroot/protocol';
import { CommandContext } from './command-context';
import { assertRebootPolicy, stageTrial } from './trial-staging';

/** switch (docs/agent.md §4): a trial of a snapshot already on the device. */
export async function runSwitch(ctx: CommandContext, command: SwitchCommand): Promise<void> {
  assertRebootPolicy(command.reboot);
  await stageTrial(ctx, command.commandId, command.snapshot, command.reboot, {});
}
