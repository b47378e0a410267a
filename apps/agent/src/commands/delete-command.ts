import { DeleteCommand, JobEventType } from '@cowroot/protocol';
import { CommandContext } from './command-context';

/** delete (docs/agent.md §4): snapshots the device does not use; the booted, current or trial one is refused. */
export async function runDelete(ctx: CommandContext, command: DeleteCommand): Promise<void> {
  for (const id of command.snapshots) {
    await ctx.core.store.delete(id, await ctx.core.switcher.snapshotsInUse());
    ctx.logger.info('snapshot deleted', { commandId: command.commandId, snapshot: id });
  }
  await ctx.events.emit(command.commandId, JobEventType.Completed);
}
