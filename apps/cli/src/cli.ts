import { Command, CommanderError } from 'commander';
import { COWROOT_VERSION } from '@cowroot/protocol';
import { ApiError, CliError } from './cli-error';
import { CliContext, CliIo } from './cli-context';
import { ExitCode } from './exit-codes';
import { registerAuditCommands } from './commands/audit.command';
import { registerDevicesCommands } from './commands/devices.command';
import { registerLoginCommand } from './commands/login.command';
import { registerReleasesCommands } from './commands/releases.command';
import { registerRollbackCommand } from './commands/rollback.command';
import { registerRolloutsCommands } from './commands/rollouts.command';

/** The `cowroot` command tree, writing through `context` (so tests can run it in-process). */
export function buildProgram(context: CliContext): Command {
  const program = new Command('cowroot')
    .description('Operator CLI of the cowroot fleet server: devices, releases, rollouts, rollbacks, audit.')
    .version(COWROOT_VERSION)
    .option('--json', 'machine-readable JSON on stdout (errors as JSON on stderr)')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (text) => context.io.stdout.write(text),
      writeErr: (text) => context.io.stderr.write(text),
    });
  // commander exits the process on usage errors unless overridden; every subcommand inherits this
  program.exitOverride();
  registerLoginCommand(program, context);
  registerDevicesCommands(program, context);
  registerReleasesCommands(program, context);
  registerRolloutsCommands(program, context);
  registerRollbackCommand(program, context);
  registerAuditCommands(program, context);
  return program;
}

/**
 * Runs one invocation and returns its exit code (docs/cli.md §Exit codes). Never throws and never calls
 * process.exit, so it can run in-process in tests.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  const context = new CliContext(io);
  const program = buildProgram(context);
  const json = argv.includes('--json');
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.Ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and --version "fail" with exit code 0; everything else commander reports is a usage error
      return error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    if (error instanceof CliError) {
      reportError(context, error, json);
      return error.exitCode;
    }
    context.err(`cowroot: unexpected error: ${(error as Error)?.stack ?? String(error)}`);
    return ExitCode.Failure;
  }
}

function reportError(context: CliContext, error: CliError, json: boolean): void {
  if (json) {
    const body =
      error instanceof ApiError
        ? {
            status: error.status,
            code: error.code,
            message: error.serverMessage,
            correlationId: error.correlationId,
            details: error.details ?? null,
          }
        : { code: ExitCode[error.exitCode].toUpperCase(), message: error.message };
    context.err(JSON.stringify({ error: { ...body, exitCode: error.exitCode } }));
    return;
  }
  context.err(`cowroot: ${error.message}`);
}
