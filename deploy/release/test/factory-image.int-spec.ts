import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ArtifactManifest, SnapshotOrigin } from '@cowroot/protocol';
import { SnapshotStore } from '@cowroot/device';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { validateAgentConfig } from '../../../apps/agent/src/config/agent-config';
import { CommandRunner, parseSubvolumeShow } from '@cowroot/device';
import { parseBmapSizes } from '../src/image/bmap';
import { writeFakeRootfs } from './fake-rootfs';
import {
  attachPartition,
  BoardProfileJson,
  fwPrintenv,
  loopDevicesUnder,
  mountsOf,
  partitionTable,
  sh,
  withPartition,
} from './image-inspection';
import { LoopBtrfs, createLoopBtrfs } from '@cowroot/device/testing';

interface ToolRun {
  code: number;
  stdout: string;
  stderr: string;
}

const here = __dirname;
const boards = resolve(here, '../boards');
const MiB = 1024 * 1024;

function tool(bundle: string, args: string[]): Promise<ToolRun> {
  return new Promise((done) => {
    execFile(process.execPath, [bundle, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, offset);
    return buffer;
  } finally {
    await handle.close();
  }
}

function expectOneLineFailure(run: ToolRun, pattern: RegExp): void {
  expect(run.code).toBe(1);
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^cowroot-release: /);
  expect(lines[0]).toMatch(pattern);
}

describePrivileged(
  'cowroot-release image: a factory disk image inspected as u-boot and the device see it',
  [
    requireRoot,
    requireLoopDevices,
    ...['btrfs', 'mkfs.btrfs', 'mkimage', 'zstd', 'rsync', 'sfdisk', 'mkfs.vfat', 'mcopy', 'mkenvimage'].map(
      requireCommand,
    ),
    requireCommand('fw_printenv'),
    requireCommand('bmaptool'),
    requireCommand('openssl'),
  ],
  () => {
    const runner = new CommandRunner();
    let work: string;
    let images: string;
    let bundle: string;
    let buildHost: LoopBtrfs | undefined;
    let key: string;
    let publicKey: string;
    let credentialFile: string;
    let caFile: string;
    let manifest: ArtifactManifest;
    const release = () => join(work, 'out', 'base-1.0');

    const image = (target: string, extra: string[] = [], board = join(boards, 'qemu-x86-vdev.json')) =>
      tool(bundle, [
        'image',
        '--release',
        release(),
        '--board',
        board,
        '--image',
        target,
        '--release-key',
        publicKey,
        '--device-id',
        'gw-0042',
        '--credential-file',
        credentialFile,
        '--mqtt-url',
        'mqtts://fleet.example.com:8883',
        '--http-url',
        'https://fleet.example.com',
        '--ca-file',
        caFile,
        ...extra,
      ]);

    /** A bad input leaves the image directory as it was, and no loop device or mount behind. */
    async function expectNothingLeft(before: string[]): Promise<void> {
      expect((await readdir(images)).sort()).toEqual(before);
      expect(await loopDevicesUnder(images)).toEqual([]);
      expect(await mountsOf(images)).toEqual([]);
    }

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'cowroot-factory-'));
      images = join(work, 'images');
      await mkdir(images);
      bundle = join(work, 'cowroot-release.js');
      await runner.run(process.execPath, [
        resolve(here, '../../../tools/bundle.mjs'),
        resolve(here, '../src/main.ts'),
        bundle,
        '--executable',
      ]);
      await mkdir(join(work, 'build-host'));
      buildHost = await createLoopBtrfs({ runner, label: 'build-host', sizeMiB: 256 });
      const rootfs = join(work, 'rootfs');
      await writeFakeRootfs(rootfs);
      await mkdir(join(rootfs, 'etc/cowroot/required.d'), { recursive: true });
      await mkdir(join(rootfs, 'etc/cowroot/wanted.d'), { recursive: true });
      expect((await tool(bundle, ['keygen', '--out', join(work, 'release')])).code).toBe(0);
      key = join(work, 'release.key');
      publicKey = join(work, 'release.pub');
      const build = async (version: string, arch: string, extra: string[] = []) => {
        const run = await tool(bundle, [
          'build',
          ...['--rootfs', rootfs, '--pool', buildHost!.mount, '--name', 'base', '--version', version],
          ...['--arch', arch, '--key', key, '--out', join(work, 'out', `base-${version}`)],
          ...extra,
        ]);
        expect(run.stderr).toBe('');
        expect(run.code).toBe(0);
      };
      await build('1.0', 'x86');
      await build('1.0-arm', 'arm');
      await build('1.0-arm64', 'arm64', ['--load-address', '0x40400000']);
      manifest = JSON.parse(
        await readFile(join(release(), 'base-1.0-full.btrfs.zst.manifest.json'), 'utf8'),
      ) as ArtifactManifest;
      credentialFile = join(work, 'gw-0042.credential');
      await writeFile(credentialFile, `${'f'.repeat(8)}0123456789abcdef0123456789\n`);
      caFile = join(work, 'ca.pem');
      await sh('openssl', [
        ...['req', '-x509', '-newkey', 'ed25519', '-nodes', '-subj', '/CN=cowroot test CA', '-days', '1'],
        ...['-keyout', join(work, 'ca.key'), '-out', caFile],
      ]);
    }, 120_000);

    afterAll(async () => {
      await buildHost?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    describe('the x86 virtual device board', () => {
      let disk: string;
      let run: ToolRun;

      beforeAll(async () => {
        disk = join(images, 'gw-0042.img');
        run = await image(disk);
      }, 120_000);

      it('writes the image and its bmap, and leaves no loop device, mount or temp file', async () => {
        expect(run.stderr).toBe('');
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(/image .*gw-0042\.img: 1024 MiB, [\d.]+ MiB mapped/);
        expect((await readdir(images)).sort()).toEqual(['gw-0042.img', 'gw-0042.img.bmap']);
        expect(await loopDevicesUnder(images)).toEqual([]);
        expect(await mountsOf(images)).toEqual([]);
        expect(await readdir(tmpdir())).not.toContain(expect.stringMatching(/^cowroot-image-/));
      });

      it('has the partition table of the profile: FAT boot partition, then the pool to the end', async () => {
        const table = await partitionTable(disk);
        expect(table.label).toBe('dos');
        expect(table.partitions).toEqual([
          { offset: 1 * MiB, size: 32 * MiB, type: 'c', bootable: true },
          { offset: 33 * MiB, size: 991 * MiB, type: '83', bootable: false },
        ]);
        expect((await stat(disk)).size).toBe(1024 * MiB);
      });

      it('carries boot.scr and two valid env copies that fw_printenv reads straight from the image', async () => {
        const [boot] = (await partitionTable(disk)).partitions;
        // read the FAT as u-boot does, with its own FAT code (mtools), not through the kernel
        const fat = `${disk}@@${boot.offset}`;
        expect(await sh('mdir', ['-b', '-i', fat, '::/'])).toBe('::/boot.scr\n::/uboot.env\n::/uboot-redund.env\n');
        const extracted = join(work, 'fat');
        await mkdir(extracted, { recursive: true });
        await sh('mcopy', ['-n', '-i', fat, '::/boot.scr', '::/uboot.env', '::/uboot-redund.env', extracted]);
        expect(await sh('mkimage', ['-l', join(extracted, 'boot.scr')])).toMatch(/Intel x86 Linux Script/);
        // a file written once on a fresh FAT is contiguous: find each copy's place in the image and point
        // fw_env.config there, so fw_printenv reads (and CRC-checks) the image's own bytes
        const partition = await readRange(disk, boot.offset, boot.size);
        const offsets: Record<string, number> = {};
        // a redundant env is read as a pair: pairing a copy with an invalid one makes fw_printenv use (and
        // CRC-check) that copy alone
        const invalid = join(work, 'invalid.env');
        await writeFile(invalid, Buffer.alloc(0x4000));
        for (const copy of ['uboot.env', 'uboot-redund.env']) {
          const bytes = await readFile(join(extracted, copy));
          expect(bytes.length).toBe(0x4000);
          const at = partition.indexOf(bytes);
          expect(at).toBeGreaterThan(0);
          offsets[copy] = boot.offset + at;
          const env = await fwPrintenv(join(work, `one-${copy}.config`), work, [
            `${disk} 0x${offsets[copy].toString(16)} 0x4000`,
            `${invalid} 0x0 0x4000`,
          ]);
          expect(env).toMatchObject({
            cowroot_current: 'base-1.0',
            cowroot_disk: 'virtio 0:2',
            bootcmd: 'load virtio 0:1 ${scriptaddr} boot.scr && source ${scriptaddr}',
          });
          expect(env.bootargs).toBeUndefined();
        }
        // the redundant pair: copy 1 active (flag 1 after the CRC), copy 2 the older one (flag 0)
        const env = await fwPrintenv(join(work, 'pair.config'), work, [
          `${disk} 0x${offsets['uboot.env'].toString(16)} 0x4000`,
          `${disk} 0x${offsets['uboot-redund.env'].toString(16)} 0x4000`,
        ]);
        expect(env.cowroot_current).toBe('base-1.0');
        expect((await readFile(join(extracted, 'uboot.env')))[4]).toBe(1);
        expect((await readFile(join(extracted, 'uboot-redund.env')))[4]).toBe(0);
        // the CRC check is real: one flipped byte and fw_printenv refuses the copy
        const torn = await readFile(join(extracted, 'uboot.env'));
        torn[100] ^= 0xff;
        await writeFile(join(work, 'torn.env'), torn);
        await expect(
          fwPrintenv(join(work, 'torn.config'), work, [
            `${join(work, 'torn.env')} 0x0 0x4000`,
            `${invalid} 0x0 0x4000`,
          ]),
        ).rejects.toThrow(/fw_printenv/);
      });

      it('holds the factory snapshot read-only with the release received_uuid, its meta, the workspace and the device config', async () => {
        const pool = (await partitionTable(disk)).partitions[1];
        await withPartition(disk, pool, join(work, 'pool'), 'ro,subvolid=5', async (mnt) => {
          // u-boot opens the default subvolume: it must be the top level for /snapshots/... to resolve
          expect(await sh('btrfs', ['subvolume', 'get-default', mnt])).toMatch(/ID 5 /);
          const snapshot = parseSubvolumeShow(
            await sh('btrfs', ['subvolume', 'show', join(mnt, 'snapshots/base-1.0')]),
          );
          expect(snapshot.readOnly).toBe(true);
          expect(snapshot.receivedUuid).toBe(manifest.snapshotUuid);
          expect(await sh('mkimage', ['-l', join(mnt, 'snapshots/base-1.0/boot/uImage')])).toMatch(
            /Intel x86 Linux Kernel/,
          );
          expect(await readFile(join(mnt, 'snapshots/base-1.0/etc/hostname'), 'utf8')).toBe('device\n');
          // the device core reads it as the agent will
          const [info] = await new SnapshotStore({ poolPath: mnt }).list();
          expect(info).toMatchObject({
            id: 'base-1.0',
            origin: SnapshotOrigin.Factory,
            release: { name: 'base', version: '1.0' },
            receivedUuid: manifest.snapshotUuid,
            readOnly: true,
          });
          const workspace = parseSubvolumeShow(await sh('btrfs', ['subvolume', 'show', join(mnt, 'workspace')]));
          expect(workspace.readOnly).toBe(false);
          expect(await readdir(join(mnt, 'staging'))).toEqual([]);

          const config = join(mnt, 'config');
          expect((await stat(join(config, 'credential'))).mode & 0o777).toBe(0o600);
          expect((await readFile(join(config, 'credential'), 'utf8')).trim()).toBe(
            (await readFile(credentialFile, 'utf8')).trim(),
          );
          expect(await readFile(join(config, 'release.pub.pem'), 'utf8')).toBe(await readFile(publicKey, 'utf8'));
          expect(await readFile(join(config, 'ca.pem'), 'utf8')).toBe(await readFile(caFile, 'utf8'));
          expect(await readFile(join(config, 'fw_env.config'), 'utf8')).toMatch(
            /\n\/uboot\/uboot\.env\t0x0\t0x4000\n\/uboot\/uboot-redund\.env\t0x0\t0x4000\n$/,
          );
          // the agent's own validation accepts the config, with the device's paths seen through this mount
          const text = (await readFile(join(config, 'agent.json'), 'utf8'))
            .replaceAll('/var/lib/cowroot/pool', mnt)
            .replaceAll('"/etc/cowroot/', `"${mnt}/snapshots/base-1.0/etc/cowroot/`);
          const plain = JSON.parse(text) as Record<string, unknown>;
          await writeFile(join(work, 'cmdline'), 'cowroot.snapshot=base-1.0\n');
          const agentConfig = validateAgentConfig({ ...plain, kernelCmdlinePath: join(work, 'cmdline') });
          expect(agentConfig).toMatchObject({
            deviceId: 'gw-0042',
            mqttUrl: 'mqtts://fleet.example.com:8883',
            artifactOrigin: 'https://fleet.example.com',
            poolPath: mnt,
            requiredBootFiles: ['boot/uImage', 'boot/uInitrd'],
          });
          expect(agentConfig.releasePublicKey.asymmetricKeyType).toBe('ed25519');
          expect(agentConfig.ca?.toString('utf8')).toBe(await readFile(caFile, 'utf8'));
        });
      });

      it('has a bmap that maps far less than the image, and bmaptool copy reproduces the image', async () => {
        const sizes = parseBmapSizes(await readFile(`${disk}.bmap`, 'utf8'));
        expect(sizes.imageBytes).toBe(1024 * MiB);
        expect(sizes.mappedBytes).toBeGreaterThan(0);
        expect(sizes.mappedBytes).toBeLessThan(sizes.imageBytes / 10);
        console.log(
          `factory image: ${sizes.imageBytes / MiB} MiB, bmap maps ${(sizes.mappedBytes / MiB).toFixed(1)} MiB`,
        );
        const flashed = join(work, 'flashed.img');
        await sh('bmaptool', ['-q', 'copy', '--bmap', `${disk}.bmap`, disk, flashed]);
        // what bmaptool skipped are holes of the image (zeros), so equal mapped ranges + size = equal images
        expect((await stat(flashed)).size).toBe(sizes.imageBytes);
        for (const range of sizes.ranges) {
          const [start, length] = [range.first * sizes.blockSize, (range.last - range.first + 1) * sizes.blockSize];
          expect((await readRange(flashed, start, length)).equals(await readRange(disk, start, length))).toBe(true);
        }
        await rm(flashed);
      });

      it('grows the pool to its partition on the first boot after the partition was enlarged', async () => {
        const grown = join(work, 'grown.img');
        await sh('cp', ['--sparse=always', disk, grown]);
        const script = resolve(here, '../../initramfs/cowroot-workspace.sh');
        // a boot where the pool already fills its partition: the resize commits nothing (superblock
        // generation unchanged), so every boot after the first writes nothing for it
        const flashed = (await partitionTable(grown)).partitions[1];
        await withPartition(
          grown,
          flashed,
          join(work, 'flashed-pool'),
          'subvolid=5',
          async (mnt, loop) => {
            const generation = async () => {
              await sh('btrfs', ['filesystem', 'sync', mnt]);
              return /^generation\s+(\d+)/m.exec(await sh('btrfs', ['inspect-internal', 'dump-super', loop]))?.[1];
            };
            const before = await generation();
            expect(before).toMatch(/^\d+$/);
            await sh('sh', ['-c', '. "$1"; cowroot_grow_pool "$2"', 'sh', script, mnt]);
            expect(await generation()).toBe(before);
          },
          true,
        );
        await sh('truncate', ['-s', '+256M', grown]);
        await sh('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', '-N', '2', grown], { stdin: ', +\n' });
        const pool = (await partitionTable(grown)).partitions[1];
        expect(pool.size).toBe((991 + 256) * MiB);
        const newRoot = join(work, 'newroot');
        await mkdir(newRoot, { recursive: true });
        await writeFile(join(work, 'boot-cmdline'), 'root=/dev/vda2 cowroot.snapshot=base-1.0 cowroot.trial=0\n');
        const device = await attachPartition(grown, pool, true);
        try {
          const output = await new Promise<string>((done, fail) =>
            execFile(
              'sh',
              ['-c', '. "$1"; cowroot_prepare_root "$2" "$3" "$4"', 'sh', script, device, join(work, 'early'), newRoot],
              { env: { ...process.env, COWROOT_CMDLINE: join(work, 'boot-cmdline') }, encoding: 'utf8' },
              (error, stdout, stderr) => (error ? fail(new Error(`${stdout}${stderr}`)) : done(stdout)),
            ),
          );
          expect(output).toContain('workspace created from snapshot base-1.0');
          expect(await readFile(join(newRoot, 'etc/hostname'), 'utf8')).toBe('device\n');
          const show = await sh('btrfs', ['filesystem', 'show', '--raw', newRoot]);
          expect(Number(/devid\s+1 size (\d+)/.exec(show)?.[1])).toBe(pool.size);
        } finally {
          // also when an expectation failed: never leave the workspace mounted or the loop device attached
          if ((await mountsOf(work)).includes(newRoot)) await sh('umount', [newRoot]);
          await sh('losetup', ['-d', device]);
          await rm(grown, { force: true });
        }
      });
    });

    it('writes an image of the arm64 QEMU virt board from an arm64 release', async () => {
      const out = join(work, 'out', 'base-1.0-arm64');
      expect(out).toContain('arm64');
      const disk = join(images, 'arm64.img');
      const run = await tool(bundle, [
        ...['image', '--release', out, '--board', join(boards, 'qemu-arm64-virt.json'), '--image', disk],
        ...['--release-key', publicKey, '--device-id', 'arm-1', '--credential-file', credentialFile],
        ...['--mqtt-url', 'mqtt://127.0.0.1:1883', '--http-url', 'http://127.0.0.1:3000'],
      ]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const [boot, pool] = (await partitionTable(disk)).partitions;
      const extracted = join(work, 'arm64-fat');
      await mkdir(extracted, { recursive: true });
      await sh('mcopy', ['-n', '-i', `${disk}@@${boot.offset}`, '::/boot.scr', '::/uboot.env', extracted]);
      expect(await sh('mkimage', ['-l', join(extracted, 'boot.scr')])).toMatch(/AArch64 Linux Script/);
      await withPartition(disk, pool, join(work, 'arm64-pool'), 'ro,subvolid=5', async (mnt) => {
        const kernel = await sh('mkimage', ['-l', join(mnt, 'snapshots/base-1.0-arm64/boot/uImage')]);
        expect(kernel).toMatch(/AArch64 Linux Kernel Image/);
        expect(kernel).toMatch(/Load Address: 40400000/);
      });
      await rm(disk);
      await rm(`${disk}.bmap`);
    }, 120_000);

    it('writes a raw-offset env that fw_printenv reads straight from the image', async () => {
      const profile = JSON.parse(await readFile(join(boards, 'qemu-x86-vdev.json'), 'utf8')) as BoardProfileJson;
      profile.name = 'raw-env-board';
      profile.disk = { table: 'gpt', sizeMiB: 512, firstPartitionMiB: 4 };
      profile.env = {
        kind: 'raw',
        sizeBytes: 0x2000,
        offsets: [0x100000, 0x200000],
        linuxDevice: '/dev/mmcblk0',
        variables: { ...profile.env.variables, cowroot_disk: 'mmc 0:2' },
      };
      profile.partitions[0].type = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
      profile.partitions[1].type = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
      const board = join(work, 'raw-board.json');
      await writeFile(board, JSON.stringify(profile));
      await copyFile(join(boards, '../../../uboot/boot.cmd'), join(work, 'boot.cmd'));
      profile.bootScript = join(work, 'boot.cmd');
      await writeFile(board, JSON.stringify(profile));
      const disk = join(images, 'raw.img');
      const run = await image(disk, [], board);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect((await partitionTable(disk)).label).toBe('gpt');
      const env = await fwPrintenv(join(work, 'raw.config'), work, [
        `${disk} 0x100000 0x2000`,
        `${disk} 0x200000 0x2000`,
      ]);
      expect(env).toMatchObject({ cowroot_current: 'base-1.0', cowroot_disk: 'mmc 0:2' });
      await rm(disk);
      await rm(`${disk}.bmap`);
    }, 120_000);

    describe('bad input: one line, nothing written', () => {
      it('refuses a release whose kernel is built for another arch', async () => {
        const before = (await readdir(images)).sort();
        const run = await tool(bundle, [
          'image',
          ...['--release', join(work, 'out', 'base-1.0-arm'), '--board', join(boards, 'qemu-x86-vdev.json')],
          ...['--image', join(images, 'arm.img'), '--release-key', publicKey, '--device-id', 'gw-1'],
          ...[
            '--credential-file',
            credentialFile,
            '--mqtt-url',
            'mqtt://127.0.0.1:1',
            '--http-url',
            'http://127.0.0.1:1',
          ],
        ]);
        expectOneLineFailure(
          run,
          /kernel of release base@1\.0-arm is built for arm, board qemu-x86-vdev boots x86; build the release with --arch x86/,
        );
        await expectNothingLeft(before);
      }, 60_000);

      it('refuses a pool partition too small for the release', async () => {
        const profile = JSON.parse(await readFile(join(boards, 'qemu-x86-vdev.json'), 'utf8')) as BoardProfileJson;
        profile.disk.sizeMiB = 96;
        profile.bootScript = resolve(boards, profile.bootScript as string);
        const board = join(work, 'small-board.json');
        await writeFile(board, JSON.stringify(profile));
        const before = (await readdir(images)).sort();
        const run = await image(join(images, 'small.img'), [], board);
        expectOneLineFailure(
          run,
          /the pool partition of board qemu-x86-vdev \(63 MiB\) is too small .* needs at least \d+ MiB/,
        );
        await expectNothingLeft(before);
      });

      it('undoes every loop device, mount and temp file when interrupted (SIGINT) while writing the pool', async () => {
        const before = (await readdir(images)).sort();
        const child = spawn(process.execPath, [
          bundle,
          ...['image', '--release', release(), '--board', join(boards, 'qemu-x86-vdev.json')],
          ...['--image', join(images, 'interrupted.img'), '--release-key', publicKey, '--device-id', 'gw-1'],
          ...[
            '--credential-file',
            credentialFile,
            '--mqtt-url',
            'mqtt://127.0.0.1:1',
            '--http-url',
            'http://127.0.0.1:1',
          ],
        ]);
        let stdout = '';
        let stderr = '';
        let interruptedAfter = '';
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          // the boot partition is done: the pool's loop device, mkfs, mount and receive come next
          if (!interruptedAfter && stdout.includes('boot partition:')) {
            interruptedAfter = stdout.trim().split('\n').pop() ?? '';
            child.kill('SIGINT');
          }
        });
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const code = await new Promise<number | null>((done) => child.on('close', done));
        expect(interruptedAfter).toMatch(/^boot partition:/);
        expectOneLineFailure({ code: code ?? -1, stdout, stderr }, /interrupted: .*interrupted\.img was not written/);
        await expectNothingLeft(before);
      }, 60_000);

      it('refuses an image path that exists and leaves that file alone', async () => {
        const existing = join(images, 'existing.img');
        await writeFile(existing, 'precious');
        const before = (await readdir(images)).sort();
        expectOneLineFailure(await image(existing), /existing\.img already exists; refusing to overwrite it/);
        expect(await readFile(existing, 'utf8')).toBe('precious');
        await expectNothingLeft(before);
        await rm(existing);
      });

      it('refuses a release key that is not ed25519', async () => {
        const rsa = join(work, 'rsa.pub');
        await writeFile(
          rsa,
          generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }),
        );
        const before = (await readdir(images)).sort();
        const run = await image(join(images, 'rsa.img'), ['--release-key', rsa]);
        expectOneLineFailure(run, /key .*rsa\.pub is rsa, manifests are signed with ed25519/);
        await expectNothingLeft(before);
      });

      it('refuses a release signed by another key, and a credential the server would not take', async () => {
        const other = join(work, 'other');
        expect((await tool(bundle, ['keygen', '--out', other])).code).toBe(0);
        const before = (await readdir(images)).sort();
        expectOneLineFailure(
          await image(join(images, 'x.img'), ['--release-key', `${other}.pub`]),
          /signature .* does not match manifest/,
        );
        const weak = join(work, 'weak.credential');
        await writeFile(weak, 'short\n');
        await chmod(weak, 0o600);
        expectOneLineFailure(
          await image(join(images, 'x.img'), ['--credential-file', weak]),
          /must hold 24-256 printable ASCII characters/,
        );
        await expectNothingLeft(before);
      });
    });
  },
);
