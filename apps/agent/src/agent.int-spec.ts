import { createReadStream } from 'node:fs';
import { chmod, readFile, rm, truncate, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
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
});
