import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, TestServer } from '../../server/test/start-test-server';
import { FleetSimulator } from '../../../tools/fleet-sim/src/fleet-simulator';
import { SimOutcome } from '../../../tools/fleet-sim/src/sim-outcome';
import { writeFakeRelease } from '../test/fake-release';
import { CliRun, runCliInProcess } from '../test/run-cli';
import { ExitCode } from './exit-codes';
import type { RolloutStatusView } from './rollouts/rollout-view';

/**
 * `cowroot rollouts …` and `cowroot rollback` (in-process runCli) against the real server with simulated
 * devices from the fleet simulator speaking the real protocol over the server's real MQTT broker.
 */
describe('cowroot rollouts and rollback against the real server and simulated devices', () => {
  let server: TestServer;
  let fleet: FleetSimulator;
  let dir: string;
  let env: Record<string, string>;
  const cli = (...argv: string[]) => runCliInProcess(argv, env);
  const json = <T>(run: CliRun): T => {
    if (run.code !== ExitCode.Ok) throw new Error(`exit ${run.code}: ${run.stderr}`);
    return JSON.parse(run.stdout) as T;
  };
  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const value = await probe();
        if (value !== undefined) return value;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${String(last ?? '')})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  const status = async (id: string) => json<RolloutStatusView>(await cli('--json', 'rollouts', 'status', id));

  beforeAll(async () => {
    server = await startTestServer();
    dir = await mkdtemp(join(tmpdir(), 'cowroot-cli-rollouts-'));
    env = {
      COWROOT_SERVER: server.httpUrl,
      COWROOT_TOKEN: server.adminToken,
      COWROOT_CONFIG: join(dir, 'unused.json'),
    };
    const key = generateKeyPairSync('ed25519');
    const registered = await fetch(`${server.httpUrl}/api/v1/signing-keys`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        name: 'cli-rollouts',
        publicKeyPem: key.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      }),
    });
    expect(registered.status).toBe(201);
    const release = await writeFakeRelease(join(dir, 'fleet-2.0'), {
      name: 'fleet',
      version: '2.0',
      key: key.privateKey,
      size: 50_000,
    });
    expect((await cli('releases', 'publish', release.dir, '--no-progress')).code).toBe(ExitCode.Ok);

    fleet = new FleetSimulator({
      httpUrl: server.httpUrl,
      token: server.adminToken,
      mqttUrl: `mqtt://127.0.0.1:${server.mqttPort}`,
      count: 4,
      idPrefix: 'clisim',
      tags: ['cli-lab'],
      outcomeOf: () => SimOutcome.Confirm,
      device: { rebootMs: 50 },
    });
    await fleet.provision();
    await fleet.connectAll();
    await until('4 simulated devices online', async () => {
      const online = json<unknown[]>(await cli('--json', 'devices', 'list', '--tag', 'cli-lab', '--online'));
      return online.length === 4 ? online : undefined;
    });
  });

  afterAll(async () => {
    await fleet?.stopAll();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  let rolloutId = '';

  it('creates a canary rollout that waits for approval after the first wave', async () => {
    const created = await cli(
      '--json',
      'rollouts',
      'create',
      '--release',
      'fleet@2.0',
      '--tag',
      'cli-lab',
      '--wave',
      '1',
      '--wave',
      '100%,approval',
      '--timeout',
      '2m',
      '--abort',
      'any:50%:min=2:pause',
      '--reason',
      'cli test',
    );
    const rollout = json<RolloutStatusView>(created);
    rolloutId = rollout.id;
    expect(rollout).toMatchObject({
      release: { name: 'fleet', version: '2.0' },
      selector: { tags: ['cli-lab'] },
      total: 4,
    });
    expect(rollout.waves.map((wave) => [wave.size, wave.requiresApproval, wave.total])).toEqual([
      [{ kind: 'count', value: 1 }, false, 1],
      [{ kind: 'percent', value: 100 }, true, 3],
    ]);
    expect(rollout.abortRules).toEqual([{ kind: 'any', thresholdPercent: 50, minExecuted: 2, action: 'pause' }]);

    const waiting = await until('the canary confirmed and wave 2 awaiting approval', async () => {
      const view = await status(rolloutId);
      return view.waves[1].status === 'awaiting-approval' ? view : undefined;
    });
    expect(waiting.waves[0]).toMatchObject({ status: 'succeeded', counts: { confirmed: 1 } });

    const table = await cli('rollouts', 'status', rolloutId);
    expect(table.code).toBe(ExitCode.Ok);
    expect(table.stdout).toMatch(/^WAVE\s+SIZE\s+STATUS\s+DEVICES/m);
    expect(table.stdout).toMatch(/^\s+1\s+1 device\s+succeeded\s+1\s+0\s+0\s+1\s+0\s+0\s+100%/m);
    expect(table.stdout).toContain('needs approval');
  });

  it('approves the next wave and --watch follows it to completion', async () => {
    const approved = await cli('rollouts', 'approve', rolloutId, '--reason', 'canary looks good');
    expect(approved.code).toBe(ExitCode.Ok);
    expect(approved.stdout).toMatch(new RegExp(`^rollout ${rolloutId}: running`));

    const watched = await cli('--json', 'rollouts', 'status', rolloutId, '--watch', '--interval', '1s');
    expect(watched.code).toBe(ExitCode.Ok);
    const frames = watched.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as RolloutStatusView);
    expect(frames[frames.length - 1]).toMatchObject({ status: 'completed', counts: { confirmed: 4 } });

    // on a terminal the screen is cleared and redrawn; a finished rollout ends the watch after one frame
    const screen = await runCliInProcess(['rollouts', 'status', rolloutId, '--watch'], env, { tty: true });
    expect(screen.code).toBe(ExitCode.Ok);
    expect(screen.stdout.startsWith('\x1b[H\x1b[2J')).toBe(true);
    expect(screen.stdout).toMatch(/^status:\s+COMPLETED$/m);
    expect(screen.stdout.split('\x1b[2J')).toHaveLength(2);

    const executions = json<{ deviceId: string; state: string; artifact: { file: string; kind: string } | null }[]>(
      await cli('--json', 'rollouts', 'executions', rolloutId, '--all'),
    );
    expect(executions.map((e) => [e.deviceId, e.state, e.artifact?.kind]).sort()).toEqual(
      fleet.devices.map((d) => [d.id, 'confirmed', 'full']).sort(),
    );

    const timeline = json<{ action: string }[]>(await cli('--json', 'rollouts', 'timeline', rolloutId));
    expect(timeline.length).toBeGreaterThan(0);
    // the table names who did what (the API nests the actor as { type, id, name }: it once showed "-")
    const timelineTable = await cli('rollouts', 'timeline', rolloutId);
    expect(timelineTable.code).toBe(ExitCode.Ok);
    expect(timelineTable.stdout).toMatch(/operator:bootstrap-admin\s+rollout\.wave\.approved\s+rollout:/);
    expect(timelineTable.stdout).toMatch(/system:rollout engine\s+rollout\.completed/);
    expect(timelineTable.stdout).not.toMatch(/^\d{4}-\d\d-\d\d \S+\s+-\s/m);
    const again = await cli('rollouts', 'approve', rolloutId);
    expect(again.code).toBe(ExitCode.Conflict);
  });

  it("rolls the rollout's devices back to where they came from and waits for each outcome", async () => {
    const result = await cli(
      '--json',
      'rollback',
      '--rollout',
      rolloutId,
      '--reason',
      'cli test rollback',
      '--wait',
      '--wait-timeout',
      '30s',
    );
    const rollback = json<{ target: { type: string }; devices: { deviceId: string; state: string }[] }>(result);
    expect(rollback.target.type).toBe('rollout');
    expect(rollback.devices.map((d) => d.state)).toEqual(['confirmed', 'confirmed', 'confirmed', 'confirmed']);
    expect((await cli('rollback', '--device', 'clisim-00000', '--tag', 'cli-lab')).code).toBe(ExitCode.Usage);
  });

  it('pauses, resumes and cancels; actions in the wrong state exit 5, unknown rollouts exit 4', async () => {
    const rollout = json<RolloutStatusView>(
      await cli(
        '--json',
        'rollouts',
        'create',
        '--release',
        'fleet@2.0',
        '--device',
        'clisim-00001',
        '--device',
        'clisim-00002',
        '--wave',
        '1,approval',
        '--wave',
        '100%',
      ),
    );
    expect((await cli('rollouts', 'pause', rollout.id, '--reason', 'hold')).stdout).toContain('paused');
    expect((await status(rollout.id)).status).toBe('paused');
    expect((await cli('rollouts', 'resume', rollout.id)).code).toBe(ExitCode.Ok);
    expect((await cli('--json', 'rollouts', 'cancel', rollout.id, '--reason', 'not today')).code).toBe(ExitCode.Ok);
    expect((await status(rollout.id)).status).toBe('canceled');
    const paused = await cli('rollouts', 'pause', rollout.id);
    expect(paused.code).toBe(ExitCode.Conflict);
    expect(paused.stderr).toMatch(/\(HTTP 4(09|22)\)/);

    const listed = json<RolloutStatusView[]>(await cli('--json', 'rollouts', 'list'));
    expect(listed.map((r) => r.id)).toEqual([rollout.id, rolloutId]);
    const missing = await cli('rollouts', 'status', '00000000-0000-4000-8000-000000000000');
    expect(missing.code).toBe(ExitCode.NotFound);
    expect((await cli('rollouts', 'create', '--release', 'fleet@2.0', '--wave', '100%')).code).toBe(ExitCode.Usage);
    expect((await cli('rollouts', 'create', '--release', 'nope@1', '--all-devices', '--wave', '100%')).code).toBe(
      ExitCode.NotFound,
    );
  });
});
