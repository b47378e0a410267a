import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, RebootMode } from '@cowroot/protocol';
import { readSwitchEnv } from '@cowroot/device';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { AgentRig, BuiltRelease } from './testing/agent-rig';

jest.setTimeout(180_000);

const requirements = [
  requireRoot,
  requireLoopDevices,
  requireCommand('btrfs'),
  requireCommand('fw_setenv'),
  requireCommand('mkenvimage'),
  requireCommand('zstd'),
];

const tree = (version: string) => ({ 'boot/uImage': `kernel ${version}\n`, 'etc/os-release': `VERSION=${version}\n` });

/**
 * Downgrade protection (docs/agent.md §4.3), commit disabled by config, and cancel of an install whose
 * trial is already requested, on a real btrfs pool, a real file-backed u-boot env and aedes.
 */
describePrivileged('Agent downgrade protection, disabled commit, cancel of a staged install', requirements, () => {
  const rig = new AgentRig();
  let r1: BuiltRelease;
  let r2: BuiltRelease;
  let r3: BuiltRelease;

  const envNow = async () => readSwitchEnv(await rig.env.readAll());
  const floorFile = async () =>
    JSON.parse(await readFile(join(rig.pool, 'state', 'agent', 'security.json'), 'utf8')) as {
      floor: number;
      snapshots: Record<string, { securityVersion: number; allowRollbackFrom?: number }>;
    };

  beforeAll(async () => {
    await rig.setUp();
    r1 = await rig.builder.build('r1', tree('1'));
    r2 = await rig.builder.build('r2', tree('2'), r1);
    r3 = await rig.builder.build('r3', tree('3'), r2);
    await rig.provision(r1, 'r1');
    // every agent start of this suite (the reboots too) runs with commit disabled
    rig.configOverrides = { allowCommit: false };
    await rig.startAgent();
  });

  afterAll(async () => {
    await rig.tearDown();
  });

  it('raises the floor when a release with a security version is accepted', async () => {
    const artifact = await rig.artifact(r2, { mutate: (m) => (m.securityVersion = 5) });
    const command = rig.installCommand(artifact, rig.http.serve('r2.zst', artifact.file), { mode: RebootMode.Now });
    await rig.send(command);
    await rig.waitForEvent(command.commandId as string, 'rebooting');
    await rig.reboot(); // the trial boot
    await rig.waitForEvent(command.commandId as string, 'confirmed');
    await rig.reboot(); // u-boot accepts, the agent starts on the confirmed snapshot
    await rig.waitFor('the floor raised', async () => (await floorFile().catch(() => null))?.floor === 5);
    expect((await floorFile()).snapshots['base-r2']).toEqual({ securityVersion: 5 });
    expect((await envNow()).current).toBe('base-r2');
  });

  it('refuses an older signed release and a switch below the floor, before any download or env write', async () => {
    const envBefore = await rig.env.readAll();
    const old = await rig.artifact(r3, { version: 'r3-old', mutate: (m) => (m.securityVersion = 4) });
    const url = rig.http.serve('r3-old.zst', old.file);
    const install = rig.installCommand(old, url);
    await rig.send(install);
    const refused = await rig.waitForEvent(install.commandId as string, 'failed');
    expect(refused.error).toEqual({
      code: ErrorCode.DowngradeRefused,
      message:
        "install of base r3-old refused: security version 4 is below the device's floor 5 and carries no rollback allowance",
    });
    expect(rig.http.requestsFor('r3-old.zst')).toBe(0);

    // the factory snapshot has no security version: 0 < 5
    const back = rig.command('switch', { snapshot: 'r1', reboot: { mode: 'never' } });
    await rig.send(back);
    const switchRefused = await rig.waitForEvent(back.commandId as string, 'failed');
    expect(switchRefused.error).toMatchObject({ code: ErrorCode.DowngradeRefused });
    expect(await rig.env.readAll()).toEqual(envBefore);
  });

  it('takes a release below the floor that carries a signed rollback allowance; a cancel withdraws its requested trial', async () => {
    const allowed = await rig.artifact(r3, {
      version: 'r3-rollback',
      mutate: (m) => {
        m.securityVersion = 4;
        m.allowRollbackFrom = 5;
      },
    });
    const install = rig.installCommand(allowed, rig.http.serve('r3-rollback.zst', allowed.file));
    const installId = install.commandId as string;
    await rig.send(install);
    expect(await rig.waitForEvent(installId, 'staged')).toMatchObject({ snapshot: 'base-r3-rollback' });
    expect(await envNow()).toMatchObject({ current: 'base-r2', trial: 'base-r3-rollback', state: 'requested' });
    expect((await floorFile()).snapshots['base-r3-rollback']).toEqual({ securityVersion: 4, allowRollbackFrom: 5 });

    // the install is finished and the device has not rebooted: the cancel withdraws the trial in the env
    const cancel = rig.command('cancel', { targetCommandId: installId });
    await rig.send(cancel);
    await rig.waitForEvent(cancel.commandId as string, 'completed');
    expect(
      rig
        .events(installId)
        .map((e) => e.type)
        .filter((type) => type !== 'progress'),
    ).toEqual(['accepted', 'staged', 'canceled']);
    const canceled = rig.events(installId).find((e) => e.type === 'canceled');
    expect(canceled).toMatchObject({
      snapshot: 'base-r3-rollback',
      error: { code: ErrorCode.Canceled, message: `canceled by ${cancel.commandId as string}` },
    });
    expect(await envNow()).toMatchObject({ current: 'base-r2', trial: '', state: '' });
    expect(rig.agent!.journal.trial).toBeNull();
    // the next boot is the current snapshot, not a trial
    expect(await rig.reboot()).toEqual({ boot: 'base-r2', trial: false });
    rig.assertMessagesValid();
  });

  it('refuses commit when the device config disables it, and leaves the pool alone', async () => {
    const before = (await rig.store.list()).map((s) => s.id);
    const commit = rig.command('commit', { snapshot: 'committed-1', reboot: { mode: 'never' } });
    await rig.send(commit);
    const failed = await rig.waitForEvent(commit.commandId as string, 'failed');
    expect(failed.error).toEqual({
      code: ErrorCode.CommandDisabled,
      message: 'commit is disabled on this device (allowCommit: false)',
    });
    expect((await rig.store.list()).map((s) => s.id)).toEqual(before);
  });
});
