import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { DEBIAN_QEMU } from './debian-device';
import { DebianHarness, seconds } from './testing/debian-harness';
import { describeOnBoards } from './vdev-boards';

/**
 * Issue 10, "The real agent in a booted device", on each board (COWROOT_VDEV_BOARDS picks one): the
 * DebianHarness's factory image of a Debian bookworm rootfs with the bundled agent under systemd, booted by
 * the board's real u-boot in QEMU, the fleet server in this process, reached by the guest only through QEMU
 * user networking's guestfwd to 127.0.0.1. One guest lives through the whole story (its own reboots): v2 as
 * an incremental stream → trial → confirmed → accepted; v3 whose required check fails → rejected →
 * fallback → rolled-back with the check's output; then commit of the workspace → trial → booted. Every
 * step runs on both boards.
 */
describeOnBoards(
  ['x86', 'arm64'],
  'the real agent in a booted Debian device',
  // the x86 Debian guest runs in qemu-system-x86_64 (its kernel is 64-bit), besides the board's i386 QEMU
  (board) => [
    requireRoot,
    requireLoopDevices,
    ...['btrfs', 'mkfs.btrfs', 'mkimage', 'mkenvimage', 'zstd', 'rsync', 'sfdisk', 'mmdebstrap', 'chroot'].map(
      requireCommand,
    ),
    ...['mkfs.vfat', 'mcopy', 'fw_printenv', 'bmaptool', 'socat', DEBIAN_QEMU[board].command].map(requireCommand),
  ],
  (board) => {
    const h = new DebianHarness(board);

    beforeAll(() => h.setUp(), h.wait(1_800_000));
    afterAll(() => h.tearDown());

    it(
      '1. boots the factory image: the agent under systemd registers over MQTT through guestfwd',
      async () => {
        h.device.start();
        await h.device.waitFor(/cowroot: booting snapshot vdev-1\.0\.0 trial=0/, 0, h.wait(120_000));
        await h.device.waitFor(/cowroot: workspace created from snapshot vdev-1\.0\.0/, 0, h.wait(120_000));
        const view = await h.bootedInto('vdev-1.0.0', false);
        expect(view.snapshots?.map((s) => s.id)).toContain('vdev-1.0.0');
      },
      h.wait(600_000),
    );

    it(
      '2. rolls out v2 as an incremental stream: trial through u-boot, health checks, confirmed, accepted',
      async () => {
        const rolloutId = await h.rollOut('2.0.0');
        const from = h.device.log.length;
        await h.device.waitFor(/cowroot: booting snapshot vdev-2\.0\.0 trial=1/, from, h.wait(600_000));
        const trial = await h.bootedInto('vdev-2.0.0', true);
        const done = await h.until(
          'the v2 rollout to complete',
          async () => {
            const rollout = await h.api<{ status: string; counts: Record<string, number> }>(
              'GET',
              `/rollouts/${rolloutId}`,
            );
            return rollout.status === 'completed' ? rollout : null;
          },
          h.wait(300_000),
        );
        expect(done.counts).toEqual({ confirmed: 1 });
        const execution = (
          await h.api<{ items: Record<string, unknown>[] }>('GET', `/rollouts/${rolloutId}/executions`)
        ).items[0];
        expect(execution).toMatchObject({
          state: 'confirmed',
          artifact: expect.objectContaining({ kind: 'incremental' }),
        });
        const health = ((await h.deviceView()).health ?? trial.health) as {
          checks: { name: string; passed: boolean; outputTail?: string }[];
        } | null;
        expect(health?.checks.find((check) => check.name === 'server-reachable')).toMatchObject({ passed: true });
        // /proc/<pid>/status of the agent's node, printed by the wanted check while the agent ran the checks
        const status = health?.checks.find((check) => check.name === '50-agent-rss')?.outputTail ?? '';
        const kib = (field: string) => Number(new RegExp(`${field}:\\s*(\\d+) kB`).exec(status)?.[1]);
        if (kib('VmRSS')) {
          h.figures.push(
            `agent in the trial boot: RSS ${(kib('VmRSS') / 1024).toFixed(1)} MiB, peak ${(kib('VmHWM') / 1024).toFixed(1)} MiB`,
          );
        }

        // confirmed means "u-boot makes it current at the next boot" (docs/agent.md §5): reboot it from the server
        await h.api('POST', `/devices/${h.deviceId}/commands`, { type: 'reboot' });
        const rebootFrom = h.device.log.length;
        await h.device.waitFor(/cowroot: booting snapshot vdev-2\.0\.0 trial=0/, rebootFrom, h.wait(300_000));
        const accepted = await h.bootedInto('vdev-2.0.0', false);
        expect(accepted.lastTrialResult).toEqual({ snapshot: 'vdev-2.0.0', outcome: 'accepted' });
      },
      h.wait(1_200_000),
    );

    it(
      '3. rolls out v3 whose required check fails: rejected, u-boot falls back, rolled-back with the output',
      async () => {
        const rolloutId = await h.rollOut('3.0.0');
        const from = h.device.log.length;
        await h.device.waitFor(/cowroot: booting snapshot vdev-3\.0\.0 trial=1/, from, h.wait(600_000));
        await h.device.waitFor(/cowroot: booting snapshot vdev-2\.0\.0 trial=0/, from, h.wait(600_000));
        await h.bootedInto('vdev-2.0.0', false);
        const rolledBack = await h.until(
          'the rolled-back event',
          async () => (await h.events()).find((event) => event.type === 'rolled-back'),
          h.wait(300_000),
        );
        expect(rolledBack.payload).toMatchObject({
          snapshot: 'vdev-3.0.0',
          rollback: { by: 'health-check', check: '20-vdev-selftest', restoredSnapshot: 'vdev-2.0.0' },
        });
        expect(JSON.stringify(rolledBack.payload)).toContain('vdev self-test: release 3 is broken on purpose');
        const execution = (
          await h.api<{ items: Record<string, unknown>[] }>('GET', `/rollouts/${rolloutId}/executions`)
        ).items[0];
        expect(execution.state).toBe('rejected-by-health-check');
        // read while QEMU runs: the agent's env writes are fsynced, and mtools only reads the FAT
        expect((await h.vdev.readEnv()).cowroot_current).toBe('vdev-2.0.0');
      },
      h.wait(1_200_000),
    );

    it(
      '4. commits the running workspace: a new snapshot, tried, confirmed and booted',
      async () => {
        const command = await h.api<{ id: string }>('POST', `/devices/${h.deviceId}/commands`, {
          type: 'commit',
          snapshot: 'vdev-2.0.0-committed',
        });
        const staged = await h.until(
          'the commit staged',
          async () => (await h.events()).find((event) => event.type === 'staged' && event.commandId === command.id),
          h.wait(300_000),
        );
        const snapshot = (staged.payload as { snapshot: string }).snapshot;
        expect(snapshot).toBe('vdev-2.0.0-committed');
        await h.bootedInto(snapshot, true);
        await h.until(
          'the commit confirmed',
          async () => (await h.events()).find((event) => event.type === 'confirmed' && event.commandId === command.id),
          h.wait(300_000),
        );
        await h.api('POST', `/devices/${h.deviceId}/commands`, { type: 'reboot' });
        const view = await h.bootedInto(snapshot, false);
        expect(view.snapshots?.find((s) => s.id === snapshot)).toMatchObject({ origin: 'committed' });
        await h.device.stop();
        // the committed snapshot holds what the workspace had at commit time: v2's files and a boot stamp
        await h.vdev.withPool(async (pool) => {
          expect(await readFile(join(pool, 'snapshots', snapshot, 'etc/cowroot-vdev-version'), 'utf8')).toBe('2\n');
          expect(await readFile(join(pool, 'snapshots', snapshot, 'etc/cowroot-vdev-boot-id'), 'utf8')).toMatch(
            /^[0-9a-f-]{36}\n$/,
          );
          // the parent it was committed on stays as it was released (vdev-1.0.0, the oldest of four, is gone
          // to the agent's start-up GC: retention 3 besides the booted one, docs/agent.md §2)
          expect(await readFile(join(pool, 'snapshots/vdev-2.0.0/etc/cowroot-vdev-version'), 'utf8')).toBe('2\n');
        });
        expect((await h.vdev.readEnv()).cowroot_current).toBe(snapshot);
        h.figures.push(
          `boots: ${h.device
            .boots()
            .map((b) => (b.ms === null ? 'last' : seconds(b.ms)))
            .join(', ')}`,
        );
      },
      h.wait(1_200_000),
    );
  },
);
