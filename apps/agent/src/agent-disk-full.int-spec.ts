import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrorCode } from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { readSwitchEnv } from '@cowroot/device';
import { randomBytes } from 'node:crypto';
import { AgentRig, Artifact } from './testing/agent-rig';

jest.setTimeout(120_000);

const run = promisify(execFile);

/** Fills a filesystem until a write fails with ENOSPC; returns the filler files to delete. */
async function fill(dir: string): Promise<string[]> {
  const files: string[] = [];
  const chunk = Buffer.alloc(4096, 0x61);
  for (let i = 0; ; i += 1) {
    const path = join(dir, `filler-${i}`);
    try {
      await writeFile(path, chunk);
      files.push(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      await rm(path, { force: true });
      return files;
    }
  }
}

describePrivileged(
  'Agent with its journal on a full filesystem',
  [requireRoot, requireLoopDevices, requireCommand('btrfs'), requireCommand('fw_setenv'), requireCommand('zstd')],
  () => {
    const rig = new AgentRig();
    let stateMount = '';
    let full2: Artifact;

    beforeAll(async () => {
      await rig.setUp({ deviceMiB: 256 });
      const r1 = await rig.builder.build('r1', { 'boot/uImage': 'kernel 1\n', 'etc/os-release': 'VERSION=1\n' });
      await rig.provision(r1, 'r1');
      const r2 = await rig.builder.build(
        'r2',
        { 'boot/uImage': 'kernel 2\n', 'usr/lib/blob': randomBytes(1024 * 1024) },
        r1,
      );
      full2 = await rig.artifact(r2);
      // a tiny real filesystem for the journal only: the pool keeps its space, as on a device whose state
      // partition fills up
      stateMount = join(rig.dir, 'state-tmpfs');
      await mkdir(stateMount);
      await run('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'cowroot-state-test', stateMount]);
      await rig.startAgent({ stateDir: join(stateMount, 'agent') });
    });

    afterAll(async () => {
      await rig.stopAgent().catch(() => undefined);
      if (stateMount) await run('umount', [stateMount]).catch((error: Error) => console.warn(error.message));
      await rig.tearDown();
    });

    it('reports DISK_FULL when the journal cannot be written, and runs commands again once space is back', async () => {
      const filler = await fill(stateMount);
      expect(filler.length).toBeGreaterThan(0);

      const first = rig.command('switch', { snapshot: 'r1', reboot: { mode: 'never' } });
      await rig.send(first);
      const failed = await rig.waitForEvent(first.commandId as string, 'failed');
      expect(failed.error).toMatchObject({ code: ErrorCode.DiskFull });
      // the next command in the queue is answered too (today's queue would have died at the first)
      const second = rig.command('delete', { snapshots: ['no-such-snapshot'] });
      await rig.send(second);
      expect((await rig.waitForEvent(second.commandId as string, 'failed')).error).toMatchObject({
        code: ErrorCode.DiskFull,
      });
      // a redelivery in this run (twice) is answered with the outcome, with its eventId, and not executed
      for (const round of [1, 2]) {
        await rig.send(first);
        await rig.waitFor(`duplicate answer ${round}`, () =>
          rig.events(first.commandId as string).filter((e) => e.type === 'accepted' && e.duplicate === true).length >=
          round
            ? true
            : undefined,
        );
      }
      await rig.waitFor('the outcome re-sent twice', () =>
        rig.events(first.commandId as string).filter((e) => e.eventId === failed.eventId).length === 3
          ? true
          : undefined,
      );
      expect(rig.events(first.commandId as string).map((e) => e.type)).toEqual([
        'failed',
        'accepted',
        'failed',
        'accepted',
        'failed',
      ]);

      await Promise.all(filler.map((path) => rm(path)));
      const third = rig.command('switch', { snapshot: 'r1', reboot: { mode: 'never' } });
      await rig.send(third);
      await rig.waitForEvent(third.commandId as string, 'completed');
      expect(rig.events(third.commandId as string).map((e) => e.type)).toEqual(['accepted', 'completed']);
      // what could not be written before is in the journal now
      await rig.agent!.journal.flush();
      const journal = JSON.parse(await readFile(join(stateMount, 'agent', 'journal.json'), 'utf8')) as {
        commands: Record<string, { status: string; lastEvent: { type: string; error?: { code: string } } | null }>;
      };
      expect(journal.commands[first.commandId as string]).toMatchObject({
        status: 'done',
        lastEvent: { type: 'failed', error: { code: ErrorCode.DiskFull } },
      });
      expect(journal.commands[third.commandId as string]).toMatchObject({
        status: 'done',
        lastEvent: { type: 'completed' },
      });
      rig.assertMessagesValid();
    });

    it('a disk that fills up during an install fails it DISK_FULL before the trial is requested', async () => {
      const url = rig.http.serve('r2-slow.zst', full2.file, { kind: 'throttle', bytesPerTick: 64 * 1024 });
      const install = rig.installCommand(full2, url);
      const id = install.commandId as string;
      await rig.send(install);
      await rig.waitFor('the download under way', () => rig.events(id).find((e) => e.type === 'progress'));
      // the journal's filesystem fills while the stream comes in (the pool keeps its space)
      const filler = await fill(stateMount);
      const failed = await rig.waitFor('the install failed', () =>
        rig.events(id).find((e) => e.type === 'failed' || e.type === 'staged'),
      );
      expect(failed).toMatchObject({ type: 'failed', error: { code: ErrorCode.DiskFull } });
      // never a trial the journal does not know of: the env is as it was
      expect(readSwitchEnv(await rig.env.readAll())).toMatchObject({ current: 'r1', trial: '', state: '' });
      expect(rig.agent!.journal.trial).toBeNull();

      await Promise.all(filler.map((path) => rm(path)));
      // the received snapshot is on the device: once space is back a switch to it works
      const retry = rig.command('switch', { snapshot: 'base-r2', reboot: { mode: 'never' } });
      await rig.send(retry);
      await rig.waitForEvent(retry.commandId as string, 'staged');
      expect(readSwitchEnv(await rig.env.readAll())).toMatchObject({ trial: 'base-r2', state: 'requested' });
      expect(rig.agent!.journal.trial).toMatchObject({ commandId: retry.commandId, snapshot: 'base-r2' });
      rig.assertMessagesValid();
    });
  },
);
