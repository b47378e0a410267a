import { JobEventType, RebootCommand } from '@cowroot/protocol';
import { CommandContext } from './command-context';

/** reboot (docs/agent.md §4): `completed`, `rebooting`, then the reboot command. */
export async function runReboot(ctx: CommandContext, command: RebootCommand): Promise<void> {
  await ctx.events.emit(command.commandId, JobEventType.Completed);
  await ctx.reboots.rebootNow(command.commandId);
}
