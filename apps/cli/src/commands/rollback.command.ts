import { Command } from 'commander';
import { CliContext } from '../cli-context';

export function registerRollbackCommand(program: Command, context: CliContext): void {
  void context;
  program.command('rollback').description('switch devices back to a snapshot they hold');
}
