import { createReadStream, readFileSync } from 'node:fs';
import { chmod, readFile, rm, stat, truncate, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AddressInfo, createServer as createNetServer } from 'node:net';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { ErrorCode, RebootMode } from '@cowroot/protocol';
import { readSwitchEnv } from '@cowroot/device';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { Artifact, AgentRig, BuiltRelease, CREDENTIAL } from './testing/agent-rig';
import { ArtifactHttpServer } from './testing/artifact-http-server';
import { openDeviceCore } from './device-core';
import { validateAgentConfig } from './config/agent-config';
import { renderStatus } from './status/status-report';
import { CommandJournal } from './journal/command-journal';

jest.setTimeout(180_000);

const requirements = [
  requireRoot,
  requireLoopDevices,
  requireCommand('btrfs'),
  requireCommand('fw_setenv'),
  requireCommand('mkenvimage'),
  requireCommand('zstd'),
];

function tree(
  version: string,
  extra: Record<string, string | Buffer | null> = {},
): Record<string, string | Buffer | null> {
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
    expect(rig.http.requests.filter((r) => r.path.endsWith('r2.btrfs.zst')).map((r) => r.range)).toEqual([
      undefined,
      'bytes=300000-',
    ]);
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
    expect(lastState).toMatchObject({
      bootedSnapshot: 'base-r2',
      trialBoot: true,
      health: { status: 'passed' },
      deltaFormats: [1, 2, 3],
    });

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
    const duplicate = await rig.waitFor('duplicate accepted', () =>
      rig.events(id).find((e) => e.type === 'accepted' && e.duplicate === true),
    );
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
    await rig.waitFor(
      'second duplicate',
      () => rig.events(id).filter((e) => e.type === 'accepted' && e.duplicate === true).length === 2,
    );
    // the first duplicate answer did not become the last outcome: the second is answered with `confirmed` too
    await rig.waitFor('outcome resent again', () =>
      rig.events(id).filter((e) => e.eventId === resent.eventId).length === 3 ? true : undefined,
    );
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
      expect(await envNow()).toMatchObject({
        trial: '',
        state: '',
        result: 'health-rejected',
        resultSnapshot: 'base-r2',
        current: 'r3',
      });
      const health = rig.states().at(-1)!.health as {
        status: string;
        checks: Array<{ name: string; passed: boolean; kind: string }>;
      };
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
    expect(rolledBack.rollback).toMatchObject({
      snapshot: 'base-r2',
      restoredSnapshot: 'r3',
      by: 'health-check',
      check: '50-app-responds',
    });
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
    expect(rig.states().at(-1)).toMatchObject({
      lastTrialResult: { snapshot: 'base-r2', outcome: 'bootloader-fallback' },
    });
  });

  it('reports a kernel that u-boot could not load as rolled-back by kernel-load', async () => {
    const command = rig.command('switch', { snapshot: 'base-r2', reboot: { mode: 'now' } });
    const id = command.commandId as string;
    await rig.send(command);
    await rig.waitForEvent(id, 'rebooting');
    expect(await rig.reboot({ kernelLoads: (snapshot) => snapshot !== 'base-r2' })).toEqual({
      boot: 'r3',
      trial: false,
    });
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
    await rig.reboot({
      config: {
        server: { mqttUrl: `mqtt://127.0.0.1:${deadPort}`, httpUrl: rig.httpUrl },
        health: { ...(rig.configFor().health as object), mqttConfirmTimeoutMs: 1500 },
      },
    });
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
  it('commits the rw workspace as a new snapshot, stages it, and a cancel withdraws the trial', async () => {
    await writeFile(join(rig.pool, 'workspace', 'etc', 'local-change.conf'), 'tuned=yes\n');
    const command = rig.command('commit', {
      snapshot: 'c1',
      label: 'field fix',
      reboot: { mode: 'window', window: { start: '03:00', end: '03:00' } },
    });
    const id = command.commandId as string;
    const rebootsBefore = await rig.rebootCount();
    await rig.send(command);
    // "03:00-03:00" is always open: the window reboot happens at once
    await rig.waitForEvent(id, 'rebooting');
    const staged = rig.events(id).find((e) => e.type === 'staged')!;
    expect(staged.snapshot).toBe('c1');
    await rig.waitFor('window reboot', async () => (await rig.rebootCount()) === rebootsBefore + 1);
    const snapshot = await rig.store.get('c1');
    expect(snapshot).toMatchObject({ origin: 'committed', readOnly: true, receivedUuid: null });
    expect(await readFile(join(rig.pool, 'snapshots', 'c1', 'etc', 'local-change.conf'), 'utf8')).toBe('tuned=yes\n');
    expect(await envNow()).toMatchObject({ trial: 'c1', state: 'requested' });

    const cancel = rig.command('cancel', { targetCommandId: id });
    await rig.send(cancel);
    await rig.waitForEvent(cancel.commandId as string, 'completed');
    await rig.waitForEvent(id, 'canceled');
    expect(await envNow()).toMatchObject({ trial: '', state: '', current: 'r3' });
    expect(rig.agent!.journal.trial).toBeNull();

    // a window that is closed now: staged, the reboot waits (and survives an agent restart)
    const now = new Date();
    const hh = (h: number) => String((now.getHours() + h) % 24).padStart(2, '0');
    const later = rig.command('switch', {
      snapshot: 'c1',
      reboot: { mode: 'window', window: { start: `${hh(2)}:00`, end: `${hh(3)}:00` } },
    });
    const rebootsNow = await rig.rebootCount();
    await rig.send(later);
    await rig.waitForEvent(later.commandId as string, 'staged');
    await rig.stopAgent();
    await rig.startAgent();
    expect(rig.agent!.journal.scheduledReboot).toMatchObject({ commandId: later.commandId });
    expect(await rig.rebootCount()).toBe(rebootsNow);
    const cancelLater = rig.command('cancel', { targetCommandId: later.commandId });
    await rig.send(cancelLater);
    await rig.waitForEvent(later.commandId as string, 'canceled');
    expect(rig.agent!.journal.scheduledReboot).toBeNull();

    const del = rig.command('delete', { snapshots: ['c1'] });
    await rig.send(del);
    await rig.waitForEvent(del.commandId as string, 'completed');
    expect(await rig.store.get('c1')).toBeNull();
    // the booted snapshot is refused
    const delBooted = rig.command('delete', { snapshots: ['r3'] });
    await rig.send(delBooted);
    expect((await rig.waitForEvent(delBooted.commandId as string, 'failed')).error).toMatchObject({
      code: ErrorCode.SnapshotInUse,
    });
  });

  it('prints the device status the way rauc status does', async () => {
    const core = await openDeviceCore(validateAgentConfig(rig.configFor()));
    const text = renderStatus({
      deviceId: rig.deviceId,
      status: await core.switcher.status(),
      snapshots: await core.store.list(),
      freeBytes: await core.store.freeBytes(),
      trial: rig.agent!.journal.trial,
    });
    expect(text).toContain('Booted from:   r3\n');
    expect(text).toContain('Fallback:      r3\n');
    expect(text).toContain('Previous:      base-r2\n');
    expect(text).toContain('Last result:   base-r2: health-rejected');
    expect(text).toMatch(/x \[r3\] \(booted, current\)\n {6}origin: {8}received/);
    expect(text).toMatch(/o \[r1\]/);
    expect(text).toContain(`received_uuid: ${r3.uuid}`);
  });

  describe('bad input never harms the device', () => {
    let rx: BuiltRelease;
    // a release the device does not hold, so the install really downloads
    let rxFull: Artifact;
    let before: Awaited<ReturnType<typeof fingerprint>>;

    async function fingerprint() {
      const booted = await rig.store.get('r3');
      return {
        env: await rig.env.readAll(),
        bootedUuid: booted?.uuid,
        motd: await readFile(join(rig.pool, 'snapshots', 'r3', 'etc', 'motd'), 'utf8'),
        snapshots: (await rig.store.list()).map((snapshot) => snapshot.id),
      };
    }

    beforeAll(async () => {
      rx = await rig.builder.build(
        'rx',
        tree('x', { 'etc/motd': 'x\n', 'usr/lib/rx.bin': randomBytes(1024 * 1024) }),
        r1,
      );
      rxFull = await rig.artifact(rx, { version: 'rx' });
    });

    beforeEach(async () => {
      before = await fingerprint();
    });

    afterEach(async () => {
      expect(await fingerprint()).toEqual(before);
      expect(await rig.stagingEntries()).toEqual([]);
      rig.assertMessagesValid();
    });

    async function expectFailure(command: Record<string, unknown>, code: ErrorCode): Promise<Record<string, unknown>> {
      await rig.send(command);
      const failed = await rig.waitFor(`failed ${code}`, () =>
        rig
          .events(command.commandId as string)
          .find((e) => e.type === 'failed' || e.type === 'canceled' || e.type === 'staged'),
      );
      expect(failed.type).toBe('failed');
      expect(failed.error).toMatchObject({ code });
      return failed;
    }

    it('a truncated download (the server has fewer bytes than the manifest): SIZE_MISMATCH', async () => {
      const cut = join(rig.dir, 'artifacts', 'rx-cut.zst');
      await copyFile(rxFull.file, cut);
      await truncate(cut, Math.floor(rxFull.size / 2));
      const url = rig.http.serve('cut.zst', cut);
      await expectFailure(rig.installCommand(rxFull, url, { snapshotId: 'bad-1' }), ErrorCode.SizeMismatch);
    });

    it('a signed stream that is itself truncated: RECEIVE_FAILED, partial receive removed', async () => {
      const plain = await rig.artifact(rx, { compression: 'none', version: 'rx-truncated' });
      const cut = join(rig.dir, 'artifacts', 'rx-truncated.stream');
      await copyFile(plain.file, cut);
      await truncate(cut, Math.floor(plain.size * 0.6));
      const signed = await rig.artifact(rx, {
        compression: 'none',
        version: 'rx-truncated',
        mutate: (m) => {
          m.size = Math.floor(plain.size * 0.6);
          m.sha256 = createHash('sha256').update(readFileSync(cut)).digest('hex');
        },
      });
      const url = rig.http.serve('rx-truncated.stream', cut);
      await expectFailure(rig.installCommand(signed, url, { snapshotId: 'bad-2' }), ErrorCode.ReceiveFailed);
    });

    it('a corrupt compressed stream whose signed hash matches: RECEIVE_FAILED from zstd', async () => {
      const good = await rig.artifact(rx, { version: 'rx-corrupt' });
      const corrupt = join(rig.dir, 'artifacts', 'rx-corrupt.zst');
      const data = await readFile(good.file);
      for (let i = 64; i < data.length; i += 97) data[i] ^= 0xff;
      await writeFile(corrupt, data);
      const signed = await rig.artifact(rx, {
        version: 'rx-corrupt',
        mutate: (m) => {
          m.sha256 = createHash('sha256').update(data).digest('hex');
        },
      });
      const url = rig.http.serve('rx-corrupt.zst', corrupt);
      await expectFailure(rig.installCommand(signed, url, { snapshotId: 'bad-3' }), ErrorCode.ReceiveFailed);
    });

    it('corrupt bytes on the wire: SHA256_MISMATCH before btrfs sees anything', async () => {
      const corrupt = join(rig.dir, 'artifacts', 'rx-flipped.zst');
      const data = await readFile(rxFull.file);
      data[Math.floor(data.length / 2)] ^= 0x01;
      await writeFile(corrupt, data);
      const url = rig.http.serve('flipped.zst', corrupt);
      await expectFailure(rig.installCommand(rxFull, url, { snapshotId: 'bad-4' }), ErrorCode.Sha256Mismatch);
    });

    it('a signed manifest with the wrong sha256: SHA256_MISMATCH', async () => {
      const wrong = await rig.artifact(rx, { version: 'rx-wrong-sha', mutate: (m) => (m.sha256 = 'ab'.repeat(32)) });
      const url = rig.http.serve('rx-wrong-sha.zst', wrong.file);
      await expectFailure(rig.installCommand(wrong, url, { snapshotId: 'bad-5' }), ErrorCode.Sha256Mismatch);
    });

    it('unsigned, wrongly signed or tampered manifests: SIGNATURE_INVALID without a download', async () => {
      const requests = rig.http.requests.length;
      const url = rig.http.serve('r3.zst', incr3.file);
      const garbage = rig.installCommand(incr3, url, { snapshotId: 'bad-6' });
      (garbage.artifact as { signature: string }).signature = randomBytes(64).toString('base64');
      await expectFailure(garbage, ErrorCode.SignatureInvalid);
      await expectFailure(
        rig.installCommand(incr3, url, { snapshotId: 'bad-7', signWith: rig.otherKey.privateKey }),
        ErrorCode.SignatureInvalid,
      );
      const tampered = rig.installCommand(incr3, url, { snapshotId: 'bad-8' });
      const manifest = JSON.parse(incr3.manifest.toString()) as Record<string, unknown>;
      manifest.snapshotUuid = r1.uuid;
      (tampered.artifact as { manifest: string }).manifest = Buffer.from(JSON.stringify(manifest)).toString('base64');
      await expectFailure(tampered, ErrorCode.SignatureInvalid);
      const empty = rig.installCommand(incr3, url, { snapshotId: 'bad-9' });
      (empty.artifact as { signature: string }).signature = '';
      await expectFailure(empty, ErrorCode.SignatureInvalid);
      expect(rig.http.requests.length).toBe(requests);
    });

    it('an incremental stream whose parent the device does not hold: PARENT_MISSING before download', async () => {
      const r4 = await rig.builder.build('r4', tree('4'), rx);
      const orphan = await rig.artifact(r4, { parent: rx });
      const requests = rig.http.requests.length;
      const url = rig.http.serve('r4-from-rx.zst', orphan.file);
      await expectFailure(rig.installCommand(orphan, url, { snapshotId: 'bad-10' }), ErrorCode.ParentMissing);
      expect(rig.http.requests.length).toBe(requests);
    });

    it('a full disk while receiving: DISK_FULL', async () => {
      const big = await rig.builder.build('big', tree('big', { 'var/zeros.bin': Buffer.alloc(96 * 1024 * 1024) }), r1);
      const artifact = await rig.artifact(big, { version: 'big' });
      expect(artifact.size).toBeLessThan(1024 * 1024); // zeros compress: the spool fits, the receive does not
      const filler = join(rig.pool, 'filler.bin');
      const free = await rig.store.freeBytes();
      await rig.runner.run('fallocate', ['-l', String(Math.max(0, free - 40 * 1024 * 1024)), filler]);
      try {
        const url = rig.http.serve('big.zst', artifact.file);
        await expectFailure(rig.installCommand(artifact, url, { snapshotId: 'bad-11' }), ErrorCode.DiskFull);
      } finally {
        await rm(filler, { force: true });
        await rig.runner.run('btrfs', ['filesystem', 'sync', rig.pool]);
      }
    });

    it('a server that vanishes mid-download: DOWNLOAD_FAILED after bounded retries', async () => {
      const doomed = new ArtifactHttpServer('dev-agent-1', CREDENTIAL);
      await doomed.listen();
      // the doomed server is the one the agent is configured with: downloads are pinned to one origin
      await rig.stopAgent();
      await rig.startAgent({ server: { mqttUrl: rig.mqttUrl, httpUrl: doomed.origin } });
      try {
        const url = doomed.serve('rx.zst', rxFull.file, { kind: 'vanish', afterBytes: Math.floor(rxFull.size / 3) });
        const failed = await expectFailure(
          rig.installCommand(rxFull, url, { snapshotId: 'bad-12' }),
          ErrorCode.DownloadFailed,
        );
        expect((failed.error as { message: string }).message).toMatch(/attempts/);
      } finally {
        await doomed.close().catch(() => undefined);
        await rig.stopAgent();
        await rig.startAgent();
      }
    });

    it('an artifact URL outside the configured server origin: UNTRUSTED_URL, the credential never sent there', async () => {
      const elsewhere = new ArtifactHttpServer('dev-agent-1', CREDENTIAL);
      await elsewhere.listen();
      try {
        const url = elsewhere.serve('rx.zst', rxFull.file);
        const failed = await expectFailure(
          rig.installCommand(rxFull, url, { snapshotId: 'bad-13' }),
          ErrorCode.UntrustedUrl,
        );
        expect((failed.error as { message: string }).message).toContain(elsewhere.origin);
        // same host, same file, other port: not one request reached it
        expect(elsewhere.requests).toEqual([]);
        const sameOriginOtherUser = rig.http.serve('rx.zst', rxFull.file).replace('http://', 'http://someone@');
        await expectFailure(rig.installCommand(rxFull, sameOriginOtherUser), ErrorCode.UntrustedUrl);
        expect(rig.http.requestsFor('rx.zst')).toBe(0);
      } finally {
        await elsewhere.close();
      }
    });

    it('a cancel stops a running download: canceled, staging cleaned', async () => {
      const url = rig.http.serve('slow.zst', rxFull.file, { kind: 'throttle', bytesPerTick: 16 * 1024 });
      const install = rig.installCommand(rxFull, url, { snapshotId: 'bad-13' });
      await rig.send(install);
      await rig.waitFor('download started', () =>
        rig.events(install.commandId as string).find((e) => e.type === 'progress'),
      );
      const cancel = rig.command('cancel', { targetCommandId: install.commandId });
      await rig.send(cancel);
      const canceled = await rig.waitForEvent(install.commandId as string, 'canceled');
      expect(canceled.error).toMatchObject({ code: ErrorCode.Canceled });
      await rig.waitForEvent(cancel.commandId as string, 'completed');
    });

    it('an agent stopped or killed mid-download reports the command failed and never re-runs it; a new install of the artifact resumes the download', async () => {
      // a service stop: the running download is abandoned and reported (through the outbox)
      const url = rig.http.serve('slow-stop.zst', rxFull.file, { kind: 'throttle', bytesPerTick: 16 * 1024 });
      const install = rig.installCommand(rxFull, url, { snapshotId: 'bad-14' });
      await rig.send(install);
      await rig.waitFor('download started', () =>
        rig.events(install.commandId as string).find((e) => e.type === 'progress'),
      );
      await rig.stopAgent();
      await rig.startAgent();
      const failed = await rig.waitForEvent(install.commandId as string, 'failed');
      expect(failed.error).toMatchObject({ code: ErrorCode.Internal });
      expect((failed.error as { message: string }).message).toMatch(/stopped during this install/);
      const before = rig.http.requestsFor('slow-stop.zst');
      await rig.send(install);
      await rig.waitFor('duplicate', () => rig.events(install.commandId as string).find((e) => e.duplicate === true));
      expect(rig.http.requestsFor('slow-stop.zst')).toBe(before);

      // the partial download survived the restart, named by the artifact's sha256
      const spool = join(rig.pool, 'staging', `download-${rxFull.sha256}.part`);
      const kept = (await stat(spool)).size;
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(rxFull.size);
      // the operator retries with a new command: only the rest comes over the network
      const fastUrl = rig.http.serve('resume.zst', rxFull.file);
      const retry = rig.installCommand(rxFull, fastUrl, { snapshotId: 'resumed-14' });
      await rig.send(retry);
      const staged = await rig.waitForEvent(retry.commandId as string, 'staged');
      expect(staged.bytesDownloaded).toBe(rxFull.size - kept);
      expect(rig.http.requests.filter((r) => r.path === '/artifacts/resume.zst').map((r) => r.range)).toEqual([
        `bytes=${kept}-`,
      ]);
      expect(await rig.stagingEntries()).toEqual([]);
      // withdraw its trial and drop the snapshot, so the env is as the tests below expect it
      const withdraw = rig.command('cancel', { targetCommandId: retry.commandId });
      await rig.send(withdraw);
      await rig.waitForEvent(withdraw.commandId as string, 'completed');
      const drop = rig.command('delete', { snapshots: ['resumed-14'] });
      await rig.send(drop);
      await rig.waitForEvent(drop.commandId as string, 'completed');

      // a crash or power cut: the journal still says running and a spool file is left in staging
      await rig.stopAgent();
      const crashedId = randomUUID();
      const journal = new CommandJournal(join(rig.pool, 'state', 'agent'));
      await journal.load();
      await journal.begin(crashedId, 'install');
      await journal.flush();
      await writeFile(join(rig.pool, 'staging', `download-${crashedId}.part`), randomBytes(4096));
      await rig.startAgent();
      const crashed = await rig.waitForEvent(crashedId, 'failed');
      expect((crashed.error as { message: string }).message).toMatch(/stopped while running this install/);
    });

    it('malformed commands are answered when they name a command id, and never crash the agent', async () => {
      await rig.send('this is not json');
      await rig.send(Buffer.from([0xff, 0xfe, 0x00]));
      await rig.send(JSON.stringify([1, 2, 3]));
      const missing = rig.command('switch', { reboot: { mode: 'now' } });
      await expectFailure(missing, ErrorCode.MalformedMessage);
      const evil = rig.command('delete', { snapshots: ['../../etc'] });
      await expectFailure(evil, ErrorCode.MalformedMessage);
      const unknown = rig.command('format-disk');
      await expectFailure(unknown, ErrorCode.UnknownCommand);
      const future = { ...rig.command('reboot'), v: 99 };
      await expectFailure(future, ErrorCode.UnsupportedProtocolVersion);
      const noId = { v: 1, type: 'install', commandId: 'not-a-uuid' };
      await rig.send(noId);
      // nested deep enough to overflow the validator's recursion: answered, and the queue goes on
      const deep = rig.command('install', { reboot: { mode: 'never' } });
      await rig.send(JSON.stringify(deep).replace(/}$/, `,"artifact":${'['.repeat(5000)}${']'.repeat(5000)}}`));
      const deepFailed = await rig.waitForEvent(deep.commandId as string, 'failed');
      expect(deepFailed.error).toMatchObject({ code: ErrorCode.MalformedMessage });
      // still alive and answering
      const probe = rig.command('delete', { snapshots: ['no-such-snapshot'] });
      await expectFailure(probe, ErrorCode.SnapshotNotFound);
      expect(rig.events().some((e) => e.commandId === 'not-a-uuid')).toBe(false);
      expect(await rig.rebootCount()).toBeGreaterThan(0);
    });
  });

  it('garbage-collects a partial receive and a download spool at start', async () => {
    const stream = await rig.builder.send(r3, r2);
    const cut = join(rig.dir, 'artifacts', 'partial.stream');
    await copyFile(stream, cut);
    await truncate(cut, 4096);
    const partialDir = join(rig.pool, 'staging', 'r3.interrupted');
    await rig.runner.run('mkdir', ['-p', partialDir]);
    await rig.btrfs.receive(createReadStream(cut), partialDir).catch(() => undefined);
    await writeFile(join(rig.pool, 'staging', `download-${randomUUID()}.part`), randomBytes(1000));
    const listed = await rig.btrfs.listSubvolumes(rig.pool);
    expect(listed.some((s) => s.path.startsWith('staging/'))).toBe(true);
    await rig.stopAgent();
    await rig.startAgent();
    expect(await rig.stagingEntries()).toEqual([]);
    expect((await rig.btrfs.listSubvolumes(rig.pool)).some((s) => s.path.startsWith('staging/'))).toBe(false);
    expect(
      rig.logs.some((line) => line.includes('garbage collection done') && line.includes('staging/r3.interrupted')),
    ).toBe(true);
  });
});
