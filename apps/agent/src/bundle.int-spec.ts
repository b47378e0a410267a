import { ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode, RebootMode } from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { AgentRig } from './testing/agent-rig';
import { agentNode, unitNodeFlags } from './testing/agent-runtime';

jest.setTimeout(180_000);

const run = promisify(execFile);
const requirements = [
  requireRoot,
  requireLoopDevices,
  requireCommand('btrfs'),
  requireCommand('fw_setenv'),
  requireCommand('mkenvimage'),
  requireCommand('zstd'),
];

/**
 * What ships is dist/cowroot-agent.js from tools/bundle.mjs, which resolves some dependencies differently
 * from the sources the other tests run (class-validator's ES build). This runs that bundle with plain
 * `node` as its own process, with the node flags of the systemd unit, against the same real pool, env and
 * broker. The node is agentNode(): tools/runtimes/run-on-node.sh runs this on every supported one.
 */
describePrivileged('the bundled agent (tools/bundle.mjs) run with plain node', requirements, () => {
  const rig = new AgentRig();
  let bundle: string;
  let configFile: string;
  let agent: ChildProcess | null = null;
  let output = '';
  let stderr = '';

  beforeAll(async () => {
    await rig.setUp();
    const r1 = await rig.builder.build('r1', { 'boot/uImage': 'kernel 1\n', 'etc/os-release': 'VERSION=1\n' });
    await rig.provision(r1, 'r1');
    bundle = join(rig.dir, 'bundle', 'cowroot-agent.js');
    await run(process.execPath, [
      resolve(__dirname, '../../../tools/bundle.mjs'),
      resolve(__dirname, 'main.ts'),
      bundle,
      '--executable',
    ]);
    configFile = join(rig.dir, 'agent.json');
    await writeFile(configFile, JSON.stringify(rig.configFor()));
    agent = spawn(agentNode(), [...unitNodeFlags(), bundle, 'run', '--config', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agent.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    agent.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      stderr += chunk.toString();
    });
    await rig.waitFor('the bundled agent to connect', () => output.includes('"mqtt connected"'));
    // "mqtt connected" is logged before the agent subscribes to its commands; its online presence is
    // published after the SUBSCRIBE on the same connection, so a command sent now is not lost (a loaded
    // machine lost the first command of this suite to that race)
    await rig.waitFor('the bundled agent online', () =>
      rig.messages.some((m) => m.topic.endsWith('/presence') && m.payload.status === 'online'),
    );
  });

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGKILL');
      await new Promise((r) => agent!.once('exit', r));
    }
    await rig.tearDown();
  });

  it('validates commands: a malformed one is answered with MALFORMED_MESSAGE and the agent stays up', async () => {
    const bad = rig.command('switch', { reboot: { mode: 'now' } });
    await rig.send(bad);
    const failed = await rig.waitForEvent(String(bad.commandId), 'failed');
    expect(failed.error).toMatchObject({ code: ErrorCode.MalformedMessage });
    expect(agent!.exitCode).toBeNull();
  });

  it('installs a signed full stream: downloaded, verified, received through zstd, trial requested', async () => {
    const r2 = await rig.builder.build('r2', { 'boot/uImage': 'kernel 2\n', 'etc/os-release': 'VERSION=2\n' });
    const artifact = await rig.artifact(r2);
    const url = rig.http.serve('r2.btrfs.zst', artifact.file);
    const command = rig.installCommand(artifact, url, { mode: RebootMode.Never });
    await rig.send(command);
    const staged = await rig.waitForEvent(String(command.commandId), 'staged');
    expect(staged.snapshot).toBe('base-r2');
    expect(await rig.store.get('base-r2')).toMatchObject({ receivedUuid: r2.uuid, readOnly: true });
  });

  it('prints status like `rauc status`, and stops cleanly on SIGTERM', async () => {
    const { stdout } = await run(agentNode(), [bundle, 'status', '--config', configFile]);
    expect(stdout).toContain('base-r2');
    expect(stdout).toContain('r1');
    const exited = new Promise<number | null>((r) => agent!.once('exit', (code) => r(code)));
    agent!.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it(`ran on ${agentNode()} with the unit's node flags and never wrote to stderr (no V8 warning)`, () => {
    expect(stderr).toBe('');
  });
});
