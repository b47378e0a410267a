import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLoopBtrfs, type LoopBtrfs } from '@cowroot/device/testing';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';

const execFileAsync = promisify(execFile);
const script = join(__dirname, 'cowroot-workspace.sh');

/** Runs cowroot_prepare_root from the shared initramfs logic under dash, as an initramfs would. */
async function prepareRoot(pool: LoopBtrfs, cmdline: string, newRoot: string) {
  const cmdlineFile = join(pool.mount, '..', 'cmdline');
  await writeFile(cmdlineFile, `${cmdline}\n`);
  try {
    const { stdout } = await execFileAsync(
      'sh',
      [
        '-c',
        '. "$1"; cowroot_prepare_root "$2" "$3" "$4"',
        'sh',
        script,
        pool.loopDevice,
        join(pool.mount, '..', 'early-pool'),
        newRoot,
      ],
      { env: { ...process.env, COWROOT_CMDLINE: cmdlineFile } },
    );
    return { ok: true, output: stdout };
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${failure.stdout ?? ''}${failure.stderr ?? ''}` };
  }
}

async function mounted(path: string): Promise<boolean> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').some((line) => line.split(' ')[1] === path);
}

describePrivileged(
  'initramfs workspace step (deploy/initramfs/cowroot-workspace.sh) on a real btrfs',
  [requireRoot, requireCommand('btrfs'), requireLoopDevices],
  () => {
    let pool: LoopBtrfs;
    let newRoot: string;

    beforeEach(async () => {
      pool = await createLoopBtrfs({ sizeMiB: 256, label: 'initramfs' });
      newRoot = join(pool.mount, '..', 'newroot');
      await mkdir(join(pool.mount, 'snapshots'));
      await execFileAsync('btrfs', ['subvolume', 'create', join(pool.mount, 'snapshots/7')]);
      await mkdir(join(pool.mount, 'snapshots/7/etc'));
      await writeFile(join(pool.mount, 'snapshots/7/etc/release'), '7\n');
      await execFileAsync('btrfs', ['property', 'set', '-ts', join(pool.mount, 'snapshots/7'), 'ro', 'true']);
      // the previous boot's workspace, with a change made at run time
      await execFileAsync('btrfs', [
        'subvolume',
        'snapshot',
        join(pool.mount, 'snapshots/7'),
        join(pool.mount, 'workspace'),
      ]);
      await writeFile(join(pool.mount, 'workspace/etc/changed-at-run-time'), 'x');
    });

    afterEach(async () => {
      if (await mounted(newRoot)) await execFileAsync('umount', [newRoot]);
      await pool.cleanup();
    });

    it('replaces the workspace with a fresh rw snapshot of the booted snapshot and mounts it', async () => {
      const result = await prepareRoot(pool, 'console=ttyS0 cowroot.snapshot=7 cowroot.trial=0', newRoot);
      expect(result).toMatchObject({ ok: true });
      expect(result.output).toContain('workspace created from snapshot 7');
      expect(await readFile(join(newRoot, 'etc/release'), 'utf8')).toBe('7\n');
      expect(existsSync(join(newRoot, 'etc/changed-at-run-time'))).toBe(false);
      await writeFile(join(newRoot, 'etc/written'), 'rw'); // the new root is writable
      const { stdout } = await execFileAsync('btrfs', ['property', 'get', '-ts', join(pool.mount, 'workspace'), 'ro']);
      expect(stdout.trim()).toBe('ro=false');
      expect(existsSync(join(pool.mount, 'snapshots/7/etc/written'))).toBe(false);
      expect(await mounted(join(pool.mount, '..', 'early-pool'))).toBe(false);
    });

    // tools/powercut found it: a power cut that tears the primary superblock's 4 KiB write leaves a pool the
    // kernel cannot mount (it reads only the primary) although the backup copy at 64 MiB is intact
    it('restores a torn primary superblock from its backup copy, then prepares the root', async () => {
      await execFileAsync('umount', [pool.mount]);
      try {
        // one 512-byte sector of the primary superblock (at 64 KiB) written, the rest not: a torn write
        await execFileAsync('dd', [
          'if=/dev/urandom',
          `of=${pool.loopDevice}`,
          'bs=512',
          `seek=${(64 * 1024 + 1024) / 512}`,
          'count=1',
          'conv=notrunc,fsync',
        ]);
        await expect(execFileAsync('mount', ['-o', 'subvolid=5', pool.loopDevice, pool.mount])).rejects.toThrow();
        const result = await prepareRoot(pool, 'cowroot.snapshot=7 cowroot.trial=0', newRoot);
        expect(result).toMatchObject({ ok: true });
        expect(result.output).toContain('restoring its superblock from a backup copy');
        expect(await readFile(join(newRoot, 'etc/release'), 'utf8')).toBe('7\n');
        await execFileAsync('umount', [newRoot]);
        const { stdout } = await execFileAsync('btrfs', ['inspect-internal', 'dump-super', pool.loopDevice]);
        expect(stdout).toMatch(/csum\s+0x[0-9a-f]+ \[match\]/);
      } finally {
        await execFileAsync('mount', ['-o', 'subvolid=5', pool.loopDevice, pool.mount]);
      }
    });

    it('fails with a clear message, leaving nothing mounted, for a snapshot that does not exist', async () => {
      const result = await prepareRoot(pool, 'cowroot.snapshot=8', newRoot);
      expect(result.ok).toBe(false);
      expect(result.output).toContain('cowroot: FAILED: snapshot 8 not found');
      expect(await mounted(join(pool.mount, '..', 'early-pool'))).toBe(false);
      expect(await mounted(newRoot)).toBe(false);
      // the previous workspace is left alone when there is nothing to replace it with
      expect(existsSync(join(pool.mount, 'workspace/etc/changed-at-run-time'))).toBe(true);
    });

    it('fails with a clear message without cowroot.snapshot= or with a path in it', async () => {
      expect((await prepareRoot(pool, 'console=ttyS0', newRoot)).output).toContain(
        'no cowroot.snapshot= on the kernel command line',
      );
      expect((await prepareRoot(pool, 'cowroot.snapshot=../x', newRoot)).output).toContain(
        'invalid cowroot.snapshot=../x',
      );
    });
  },
);
