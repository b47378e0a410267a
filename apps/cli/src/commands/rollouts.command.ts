import { Command } from 'commander';
import { CliContext } from '../cli-context';

export function registerRolloutsCommands(program: Command, context: CliContext): void {
  void context;
  program.command('rollouts').description('create and steer staged rollouts');
}
