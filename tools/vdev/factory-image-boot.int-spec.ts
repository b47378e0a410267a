import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLoopBtrfs, type LoopBtrfs } from '@cowroot/device/testing';
import { requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { prepareVdevArtifacts, type VdevArtifacts, type VdevBoard } from './vdev-artifacts';
import { describeOnBoards } from './vdev-boards';
import { run } from './testing/run-command';
import { VirtualDevice } from './virtual-device';

const repo = resolve(__dirname, '../..');

/** What `cowroot-release` needs per board: the board profile and the release's kernel image options. */
const RELEASE_BOARD: Record<VdevBoard, { profile: string; build: string[] }> = {
  x86: { profile: 'qemu-x86-vdev.json', build: ['--arch', 'x86'] },
  // the arm64 Image is unpacked by bootm to 0x40400000 (the board profile's description says why there)
  arm64: { profile: 'qemu-arm64-virt.json', build: ['--arch', 'arm64', '--load-address', '0x40400000'] },
};

/**
 * docs/factory.md on the virtual device: a release built by `cowroot-release build` from the virtual
 * device's own guest system, written by `cowroot-release image` with the board's profile (qemu-x86-vdev,
 * qemu-arm64-virt) and the u-boot build's default env, flashed with bmaptool onto a larger disk whose pool partition is grown,
 * and booted once by the real u-boot in QEMU (TCG). u-boot must find the env and boot.scr the image wrote
 * and boot the factory snapshot; the boot must write nothing to the env, and the pool must have grown.
 */
describeOnBoards(
  ['x86', 'arm64'],
  'a factory image boots in the virtual device',
  [
    requireRoot,
    requireLoopDevices,
    ...['btrfs', 'mkfs.btrfs', 'mkimage', 'mkenvimage', 'zstd', 'rsync', 'sfdisk'].map(requireCommand),
    ...['mkfs.vfat', 'mcopy', 'fw_printenv', 'bmaptool'].map(requireCommand),
  ],
  (board) => {
    let work: string;
    let artifacts: VdevArtifacts;
    let buildHost: LoopBtrfs | undefined;

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), `cowroot-vdev-factory-${board}-`));
      artifacts = await prepareVdevArtifacts(work, __dirname, board);
      buildHost = await createLoopBtrfs({ sizeMiB: 512, label: 'vdev-build-host' });
    }, 900_000);

    afterAll(async () => {
      await buildHost?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('boots the factory snapshot with the env and boot.scr the image wrote, and writes nothing', async () => {
      // the guest system of the base disk's snapshot 1 as the release's rootfs; kernel and initrd unwrapped
      const base = await VirtualDevice.create(join(work, 'base'), artifacts);
      const rootfs = join(work, 'rootfs');
      await base.withPool((pool) => run('cp', ['-a', join(pool, 'snapshots/1'), rootfs]));
      const initrd = join(work, 'initrd.gz');
      await run('dd', [`if=${join(rootfs, 'boot/uInitrd')}`, `of=${initrd}`, 'bs=64', 'skip=1', 'status=none']);
      await rm(join(rootfs, 'boot/uImage'));
      await rm(join(rootfs, 'boot/uInitrd'));
      const kernels = (await readdir(join(artifacts.guestRoot, 'boot'))).filter((name) => name.startsWith('vmlinuz-'));
      expect(kernels).toHaveLength(1);

      const bundle = join(work, 'cowroot-release.js');
      await run(process.execPath, [
        join(repo, 'tools/bundle.mjs'),
        join(repo, 'deploy/release/src/main.ts'),
        bundle,
        '--executable',
      ]);
      const tool = (args: string[]) => run(process.execPath, [bundle, ...args]);
      await tool(['keygen', '--out', join(work, 'release')]);
      await tool([
        ...['build', '--rootfs', rootfs, '--pool', buildHost!.mount, '--name', 'vdev', '--version', '1.0.0'],
        ...[
          ...RELEASE_BOARD[board].build,
          '--kernel',
          join(artifacts.guestRoot, 'boot', kernels[0]),
          '--initrd',
          initrd,
        ],
        ...['--key', join(work, 'release.key'), '--out', join(work, 'out')],
      ]);
      await writeFile(join(work, 'credential'), 'vdev-factory-credential-0123456789\n');
      const device = join(work, 'factory');
      await mkdir(device);
      const started = Date.now();
      const output = await tool([
        ...[
          'image',
          '--release',
          join(work, 'out'),
          '--board',
          join(repo, 'deploy/release/boards', RELEASE_BOARD[board].profile),
        ],
        ...['--board-env', artifacts.uBootInitialEnv, '--image', join(device, 'factory.img')],
        ...[
          '--release-key',
          join(work, 'release.pub'),
          '--device-id',
          'vdev-1',
          '--credential-file',
          join(work, 'credential'),
        ],
        ...['--mqtt-url', 'mqtt://127.0.0.1:1', '--http-url', 'http://127.0.0.1:1'],
      ]);
      console.log(`factory image written in ${((Date.now() - started) / 1000).toFixed(1)} s:\n${output}`);
      // flashed as the line would: bmaptool writes the mapped blocks only
      await run('bmaptool', ['-q', 'copy', join(device, 'factory.img'), join(device, 'disk.img')]);
      await rm(join(device, 'factory.img'));
      // a card larger than the image: the pool partition grown to its end, the first boot grows btrfs
      await run('truncate', ['-s', '1280M', join(device, 'disk.img')]);
      await new Promise<void>((done, fail) => {
        const child = execFile('sfdisk', ['--quiet', '--no-reread', '-N', '2', join(device, 'disk.img')], (error) =>
          error ? fail(error) : done(),
        );
        child.stdin?.end(', +\n');
      });

      const vdev = await VirtualDevice.open(device, artifacts);
      const envBefore = await vdev.envBytes();
      const record = await vdev.boot({ timeoutMs: 300_000 });
      console.log(`factory image boot: ${record.seconds.toFixed(1)} s, ${record.end}`);
      if (!record.linux) throw new Error(`the guest did not report its boot:\n${record.log.slice(-3000)}`);
      expect(record.reachedPrompt).toBe(false);
      expect(record.end).toBe('poweroff');
      expect(record.uboot).toEqual({ snapshot: 'vdev-1.0.0', trial: '0' });
      expect(record.linux).toMatchObject({ snapshot: 'vdev-1.0.0', trial: '0', release: '1' });
      expect(record.log).toContain('workspace created from snapshot vdev-1.0.0');
      // a normal boot writes nothing: both env copies byte-identical
      expect((await vdev.envBytes()).equals(envBefore)).toBe(true);
      expect((await vdev.readEnv()).cowroot_current).toBe('vdev-1.0.0');
      const poolPartition = vdev.partition(2);
      expect(poolPartition.size).toBe((1280 - 33) * 1024 * 1024);
      const show = await vdev.withPool((pool) => run('btrfs', ['filesystem', 'show', '--raw', pool]));
      expect(Number(/devid\s+1 size (\d+)/.exec(show)?.[1])).toBe(poolPartition.size);
    }, 900_000);
  },
);
