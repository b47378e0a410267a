import { Command, CommandType } from '@cowroot/protocol';
import { CommandContext } from './command-context';
import { runCancel } from './cancel-command';
import { runCommit } from './commit-command';
import { runDelete } from './delete-command';
import { runInstall } from './install-command';
import { runReboot } from './reboot-command';
import { runSwitch } from './switch-command';

/** Runs one parsed command; every CommandType has its handler (the `never` check fails the build otherwise). */
export function dispatchCommand(ctx: CommandContext, command: Command): Promise<void> {
  switch (command.type) {
    case CommandType.Install:
      return ctx.jobs.run(command, (signal) => runInstall(ctx, command, signal));
    case CommandType.Switch:
      return ctx.jobs.run(command, () => runSwitch(ctx, command));
    case CommandType.Commit:
      return ctx.jobs.run(command, () => runCommit(ctx, command));
    case CommandType.Delete:
      return ctx.jobs.run(command, () => runDelete(ctx, command));
    case CommandType.Reboot:
      return runReboot(ctx, command);
    case CommandType.Cancel:
      return runCancel(ctx, command);
    default:
      return unhandled(command);
  }
}

function unhandled(command: never): never {
  throw new Error(`no handler for command type ${JSON.stringify((command as { type: unknown }).type)}`);
}
