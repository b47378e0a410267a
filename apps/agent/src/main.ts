// first: on a Node.js older than the agent needs, one clear line and exit 1 before any other code runs
import './runtime/node-guard';
import 'reflect-metadata';
import { Command } from 'commander';
import { Agent } from './agent';
import { openDeviceCore } from './device-core';
import { AgentConfigError, loadAgentConfig } from './config/agent-config';
import { CommandJournal } from './journal/command-journal';
import { AgentLogger } from './logger';
import { renderStatus } from './status/status-report';
import { AGENT_VERSION } from './version';

const DEFAULT_CONFIG = '/etc/cowroot/agent.json';

function loadConfigOrExit(path: string) {
  try {
    return loadAgentConfig(path);
  } catch (error) {
    if (error instanceof AgentConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

async function run(configPath: string): Promise<void> {
  const config = loadConfigOrExit(configPath);
  const agent = new Agent(config, new AgentLogger(config.deviceId));
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    agent.logger.info('stopping', { signal });
    agent.stop(true).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // a bug in one handler must not take the agent (and the device's only way home) down
  process.on('unhandledRejection', (reason) => agent.logger.error('unhandled rejection', { error: String(reason) }));
  await agent.start();
}

async function status(configPath: string, json: boolean): Promise<void> {
  const config = loadConfigOrExit(configPath);
  const core = await openDeviceCore(config);
  const journal = new CommandJournal(config.stateDir);
  await journal.load();
  const data = {
    deviceId: config.deviceId,
    status: await core.switcher.status(),
    snapshots: await core.store.list(),
    freeBytes: await core.store.freeBytes().catch(() => null),
    trial: journal.trial,
  };
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : renderStatus(data));
}

const program = new Command('cowroot-agent')
  .description('cowroot on-device agent: updates, switches and health-gated confirmation')
  .version(AGENT_VERSION)
  .option('-c, --config <path>', 'agent config file (JSON, docs/agent.md)', DEFAULT_CONFIG);

program
  .command('run')
  .description('run the agent daemon')
  .action(() => run(program.opts<{ config: string }>().config));

program
  .command('status')
  .description('print snapshots, booted/fallback, pending trial and last result (like `rauc status`)')
  .option('--json', 'machine-readable output')
  .action((options: { json?: boolean }) => status(program.opts<{ config: string }>().config, Boolean(options.json)));

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`cowroot-agent: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
