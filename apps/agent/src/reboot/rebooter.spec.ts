import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandRunner, SwitchState } from '@cowroot/device';
import { JobEvents } from '../events/job-events';
import { CommandJournal } from '../journal/command-journal';
import { AgentLogger } from '../logger';
import { MqttLink } from '../mqtt/mqtt-link';
import { Rebooter } from './rebooter';

describe(Rebooter.name, () => {
  let dir: string;
  let logs: Array<Record<string, unknown>>;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-rebooter-'));
    logs = [];
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function rebooter(rebootCommand: string[]): Rebooter {
    const logger = new AgentLogger('dev-1', (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
    const journal = new CommandJournal(dir);
    // never started: the link is only there for JobEvents' type, rebootIntoFallback sends no event
    const link = new MqttLink(
      { deviceId: 'dev-1', credential: 'x'.repeat(8), url: 'mqtt://127.0.0.1:9', ca: null },
      logger,
    );
    return new Rebooter({
      rebootCommand,
      maintenanceTimezone: 'UTC',
      journal,
      events: new JobEvents(journal, link, logger),
      logger,
      runner: new CommandRunner(),
      switchState: async () => SwitchState.Idle,
    });
  }

  it('runs the reboot command as an argument array through the CommandRunner', async () => {
    const script = join(dir, 'reboot.sh');
    await writeFile(script, `#!/bin/sh\necho "$@" > '${join(dir, 'ran')}'\n`);
    await chmod(script, 0o755);
    await rebooter([script, '--now', 'with space']).rebootIntoFallback();
    expect(await readFile(join(dir, 'ran'), 'utf8')).toBe('--now with space\n');
  });

  it('logs a failing reboot command with its stderr and returns, so the agent keeps running', async () => {
    await rebooter(['sh', '-c', 'echo no reboot for you >&2; exit 3']).rebootIntoFallback();
    const failure = logs.find((line) => line.msg === 'the reboot command failed');
    expect(failure).toMatchObject({ level: 'error' });
    expect(String(failure?.error)).toMatch(/exit code 3.*no reboot for you/s);
  });
});
