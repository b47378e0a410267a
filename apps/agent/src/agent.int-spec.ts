import { createReadStream } from 'node:fs';
import { chmod, readFile, rm, truncate, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AddressInfo, createServer as createNetServer } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { ErrorCode, RebootMode } from '@cowroot/protocol';
import { readSwitchEnv } from '@cowroot/device';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '../../../tools/testing/privileged';
import { Artifact, AgentRig, CREDENTIAL } from './testing/agent-rig';
import { BuiltRelease } from '../../../libs/device/src/testing/release-builder';

jest.setTimeout(180_000);

const requirements = [requireRoot, requireLoopDevices, requireCommand('btrfs'), requireCommand('fw_setenv'), requireCommand('mkenvimage'), requireCommand('zstd')];

function tree(version: string, extra: Record<string, string | Buffer | null> = {}): Record<string, string | Buffer | null> {
  return {
    'boot/uImage': `kernel image for ${version}\n`,
    'etc/os-release': `NAME=cowroot-test\nVERSION=${version}\n`,
    'usr/bin/app': `#!/bin/sh\necho app ${version}\n`,
    ...extra,
  };
}

describePrivileged('Agent on a real btrfs pool, u-boot env and MQTT broker', requirements, () => {
  const rig = new AgentRig();
  let r1: BuiltRelease;
  let r2: BuiltRelease;
  let r3: BuiltRelease;
  let full2: Artifact;
  let incr3: Artifact;

  beforeAll(async () => {
    await rig.setUp();
    r1 = await rig.builder.build('r1', tree('1'));
    r2 = await rig.builder.build('r2', tree('2', { 'usr/lib/data.bin': randomBytes(2 * 1024 * 1024) }), r1);
    r3 = await rig.builder.build('r3', tree('3', { 'etc/motd': 'welcome to 3\n' }), r2);
    await rig.provision(r1, 'r1');
    full2 = await rig.artifact(r2);
    incr3 = await rig.artifact(r3, { parent: r2 });
    await rig.startAgent();
  });

  afterAll(async () => {
    await rig.tearDown();
  });

  async function envNow() {
    return readSwitchEnv(await rig.env.readAll());
  }

  it('installs a full stream, reboots into the trial, passes the checks and confirms', async () => {
    const url = rig.http.serve('r2.btrfs.zst', full2.file, { kind: 'drop', afterBytes: 300_000, times: 1 });
    const command = rig.installCommand(full2, url, { mode: RebootMode.Now });
    const id = command.commandId as string;
    const rebootsBefore = await rig.rebootCount();
    await rig.send(command);
    const staged = await rig.waitForEvent(id, 'staged');
    expect(staged.snapshot).toBe('base-r2');
    // resumed after the drop, nothing fetched twice
    expect(staged.bytesDownloaded).toBe(full2.size);
    expect(rig.http.requests.filter((r) => r.path.endsWith('r2.btrfs.zst')).map((r) => r.range)).toEqual([undefined, 'bytes=300000-']);
    await rig.waitForEvent(id, 'rebooting');
    await rig.waitFor('the reboot command', async () => (await rig.rebootCount()) === rebootsBefore + 1);
    const progress = rig.events(id).filter((e) => e.type === 'progress');
    expect(progress.some((e) => (e.progress as { phase: string }).phase === 'download')).toBe(true);
    expect(progress.some((e) => (e.progress as { phase: string }).phase === 'receive')).toBe(true);
    expect(await envNow()).toMatchObject({ trial: 'base-r2', state: 'requested', current: 'r1' });
    const snapshot = await rig.store.get('base-r2');
    expect(snapshot).toMatchObject({ receivedUuid: r2.uuid, readOnly: true, origin: 'received' });
    expect(await rig.stagingEntries()).toEqual([]);

    const boot = await rig.reboot();
    expect(boot).toEqual({ boot: 'base-r2', trial: true });
    const confirmed = await rig.waitForEvent(id, 'confirmed');
    expect(confirmed.snapshot).toBe('base-r2');
    expect(await envNow()).toMatchObject({ trial: 'base-r2', state: 'confirmed' });
    const lastState = rig.states().at(-1)!;
    expect(lastState).toMatchObject({ bootedSnapshot: 'base-r2', trialBoot: true, health: { status: 'passed' } });

    expect(await rig.reboot()).toEqual({ boot: 'base-r2', trial: false });
    expect(await envNow()).toMatchObject({ current: 'base-r2', previous: 'r1', state: '', result: 'accepted' });
    expect(rig.agent!.journal.trial).toBeNull();
    rig.assertMessagesValid();
  });
  it('installs an incremental stream on its parent, stages without reboot, then reboots on command', async () => {
    const url = rig.http.serve('r3-from-r2.btrfs.zst', incr3.file);
    const command = rig.installCommand(incr3, url, { mode: RebootMode.Never, snapshotId: 'r3' });
    const id = command.commandId as string;
    await rig.send(command);
    const staged = await rig.waitForEvent(id, 'staged');
    expect(staged).toMatchObject({ snapshot: 'r3', bytesDownloaded: incr3.size });
    expect(incr3.size).toBeLessThan(full2.size / 4);
    const snapshot = await rig.store.get('r3');
    expect(snapshot).toMatchObject({ receivedUuid: r3.uuid, origin: 'received' });
    expect(await readFile(join(rig.pool, 'snapshots', 'r3', 'etc', 'motd'), 'utf8')).toBe('welcome to 3\n');
    // the untouched 2 MiB file came from the parent, not the stream
    expect((await rig.store.readMetadata('r3'))?.parent).toBe('base-r2');
    expect(rig.events(id).some((e) => e.type === 'rebooting')).toBe(false);

    const rebootCommand = rig.command('reboot');
    await rig.send(rebootCommand);
    await rig.waitForEvent(rebootCommand.commandId as string, 'rebooting');
    await rig.reboot();
    await rig.waitForEvent(id, 'confirmed');
    await rig.reboot();
    expect(await envNow()).toMatchObject({ current: 'r3', previous: 'base-r2', result: 'accepted' });
  });

  it('executes a redelivered command id once and answers it with its last outcome', async () => {
    const install = rig.events().find((e) => e.type === 'staged' && e.snapshot === 'r3')!;
    const id = install.commandId as string;
    const requestsBefore = rig.http.requests.length;
    const eventsBefore = rig.events(id).length;
    const url = rig.http.serve('r3-from-r2.btrfs.zst', incr3.file);
    await rig.send(rig.installCommand(incr3, url, { commandId: id, mode: RebootMode.Now, snapshotId: 'r3' }));
    const duplicate = await rig.waitFor('duplicate accepted', () => rig.events(id).find((e) => e.type === 'accepted' && e.duplicate === true));
    expect(duplicate.snapshot).toBe('r3');
    // the last known outcome is sent again with its original eventId
    await rig.waitFor('outcome resent', () => rig.events(id).length >= eventsBefore + 2);
    const resent = rig.events(id).at(-1)!;
    expect(resent.type).toBe('confirmed');
    expect(rig.events(id).filter((e) => e.eventId === resent.eventId)).toHaveLength(2);
    expect(rig.http.requests.length).toBe(requestsBefore);
    expect(rig.events(id).filter((e) => e.type === 'staged')).toHaveLength(1);
    expect(await envNow()).toMatchObject({ current: 'r3', state: '' });

    // also after an agent restart (the journal is on disk)
    await rig.stopAgent();
    await rig.startAgent();
    await rig.send(rig.installCommand(incr3, url, { commandId: id, mode: RebootMode.Now, snapshotId: 'r3' }));
    await rig.waitFor('second duplicate', () => rig.events(id).filter((e) => e.type === 'accepted' && e.duplicate === true).length === 2);
    expect(rig.http.requests.length).toBe(requestsBefore);
  });

  it('rejects a trial whose required check fails, falls back, and reports rolled-back with the check and its output', async () => {
    const check = join(rig.requiredDir, '50-app-responds');
    await writeFile(check, '#!/bin/sh\necho "probing app"\necho "app: connection refused on :8080" >&2\nexit 1\n');
    await chmod(check, 0o755);
    await writeFile(join(rig.wantedDir, '10-optional'), '#!/bin/sh\necho optional broken; exit 1\n');
    await chmod(join(rig.wantedDir, '10-optional'), 0o755);
    try {
      const command = rig.command('switch', { snapshot: 'base-r2', reboot: { mode: 'now' } });
      const id = command.commandId as string;
      const rebootsBefore = await rig.rebootCount();
      await rig.send(command);
      await rig.waitForEvent(id, 'staged');
      await rig.waitFor('reboot', async () => (await rig.rebootCount()) === rebootsBefore + 1);
      const trialBoot = await rig.reboot();
      expect(trialBoot).toEqual({ boot: 'base-r2', trial: true });
      const rejected = await rig.waitForEvent(id, 'rejected');
      expect(rejected.error).toMatchObject({ code: ErrorCode.HealthCheckFailed });
      expect((rejected.error as { message: string }).message).toContain('50-app-responds');
      // the agent reboots into the fallback by itself
      await rig.waitFor('reboot into the fallback', async () => (await rig.rebootCount()) === rebootsBefore + 2);
      expect(await envNow()).toMatchObject({ trial: '', state: '', result: 'health-rejected', resultSnapshot: 'base-r2', current: 'r3' });
      const health = rig.states().at(-1)!.health as { status: string; checks: Array<{ name: string; passed: boolean; kind: string }> };
      expect(health.status).toBe('failed');
      expect(health.checks.find((c) => c.name === '10-optional')).toMatchObject({ passed: false, kind: 'wanted' });
    } finally {
      await rm(check, { force: true });
      await rm(join(rig.wantedDir, '10-optional'), { force: true });
    }
    const fallback = await rig.reboot();
    expect(fallback).toEqual({ boot: 'r3', trial: false });
    const id = rig.events().find((e) => e.type === 'rejected')!.commandId as string;
    const rolledBack = await rig.waitForEvent(id, 'rolled-back');
    expect(rolledBack.rollback).toMatchObject({ snapshot: 'base-r2', restoredSnapshot: 'r3', by: 'health-check', check: '50-app-responds' });
    expect((rolledBack.rollback as { outputTail: string }).outputTail).toContain('connection refused on :8080');
    expect(rig.states().at(-1)).toMatchObject({
      bootedSnapshot: 'r3',
      lastTrialResult: { snapshot: 'base-r2', outcome: 'health-rejected', check: '50-app-responds' },
    });
    // once: another boot does not report it again
    await rig.reboot();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(rig.events(id).filter((e) => e.type === 'rolled-back')).toHaveLength(1);
  });

  it('reports a bootloader fallback when the trial boot never came up to confirm', async () => {
    const command = rig.command('switch', { snapshot: 'base-r2', reboot: { mode: 'never' } });
    const id = command.commandId as string;
    await rig.send(command);
    await rig.waitForEvent(id, 'staged');
    // the trial boot hangs before the agent runs (kernel panic, broken init)
    expect(await rig.reboot({ startAgent: false })).toEqual({ boot: 'base-r2', trial: true });
    expect(await envNow()).toMatchObject({ state: 'trying', trial: 'base-r2' });
    // watchdog / power cycle: u-boot finds `trying` and falls back
    expect(await rig.reboot()).toEqual({ boot: 'r3', trial: false });
    const rolledBack = await rig.waitForEvent(id, 'rolled-back');
    expect(rolledBack.rollback).toMatchObject({ snapshot: 'base-r2', restoredSnapshot: 'r3', by: 'bootloader' });
    expect(rolledBack.error).toMatchObject({ code: ErrorCode.BootloaderFallback });
    expect(rig.states().at(-1)).toMatchObject({ lastTrialResult: { snapshot: 'base-r2', outcome: 'bootloader-fallback' } });
  });

  it('reports a kernel that u-boot could not load as rolled-back by kernel-load', async () => {
    const command = rig.command('switch', { snapshot: 'base-r2', reboot: { mode: 'now' } });
    const id = command.commandId as string;
    await rig.send(command);
    await rig.waitForEvent(id, 'rebooting');
    expect(await rig.reboot({ kernelLoads: (snapshot) => snapshot !== 'base-r2' })).toEqual({ boot: 'r3', trial: false });
    const rolledBack = await rig.waitForEvent(id, 'rolled-back');
    expect(rolledBack.rollback).toMatchObject({ snapshot: 'base-r2', restoredSnapshot: 'r3', by: 'kernel-load' });
  });

  it('does not confirm a trial boot that cannot reach the server over MQTT', async () => {
    const command = rig.command('switch', { snapshot: 'base-r2', reboot: { mode: 'now' } });
    const id = command.commandId as string;
    const rebootsBefore = await rig.rebootCount();
    await rig.send(command);
    await rig.waitFor('reboot into the trial', async () => (await rig.rebootCount()) === rebootsBefore + 1);
    // the trial's network is broken: nothing listens where the agent connects
    const deadPort = await new Promise<number>((resolve) => {
      const probe = createNetServer().listen(0, '127.0.0.1', () => {
        const port = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(port));
      });
    });
    await rig.reboot({ config: { server: { mqttUrl: `mqtt://127.0.0.1:${deadPort}` }, health: { ...(rig.configFor().health as object), mqttConfirmTimeoutMs: 1500 } } });
    await rig.waitFor('reboot into the fallback', async () => (await rig.rebootCount()) === rebootsBefore + 2);
    expect(await envNow()).toMatchObject({ result: 'health-rejected', resultSnapshot: 'base-r2', state: '' });
    expect(rig.events(id).some((e) => e.type === 'confirmed')).toBe(false);
    // back on the fallback with a working network: the persisted `rejected` and the rollback arrive
    expect(await rig.reboot()).toEqual({ boot: 'r3', trial: false });
    const rejected = await rig.waitForEvent(id, 'rejected');
    expect((rejected.error as { message: string }).message).toContain('server-reachable');
    const rolledBack = await rig.waitForEvent(id, 'rolled-back');
    expect(rolledBack.rollback).toMatchObject({ by: 'health-check', check: 'server-reachable' });
  });
});
