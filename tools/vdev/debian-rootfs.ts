import { chmod, copyFile, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CommandRunner } from '@cowroot/device';
import type { VdevBoard } from './vdev-artifacts';

const runner = new CommandRunner();
const repo = resolve(__dirname, '../..');

/** stdout of a host command; a failure names the command line and the end of its stderr (CommandError). */
async function run(command: string, args: string[], timeoutMs = 600_000): Promise<string> {
  return (await runner.run(command, args, { maxStdoutBytes: 64 * 1024 * 1024, timeoutMs })).stdout;
}

/** Debian's architecture names for the virtual device's boards. */
export type DebianArch = 'amd64' | 'arm64';

/**
 * The cached Debian bookworm tarball of build-debian-rootfs.sh (built on first use: a few minutes, then
 * cached under /var/cache/cowroot/debian-<arch>-<hash>).
 */
export async function debianRootfsTar(arch: DebianArch, toolsDir: string = __dirname): Promise<string> {
  const out = await run('bash', [join(toolsDir, 'build-debian-rootfs.sh'), arch], 1_800_000);
  const tar = /^rootfs_tar=(.+)$/m.exec(out)?.[1];
  if (!tar) throw new Error(`build-debian-rootfs.sh did not report its tarball: ${out}`);
  return tar;
}

/**
 * What the initrd needs per board with MODULES=list (MODULES=dep would size it by the build host's
 * hardware): the virtio disk and btrfs. On arm64 virt u-boot and Linux see the disk on virtio-pci (QEMU's
 * `if=virtio` there), virtio_mmio is for the transports QEMU virt also wires; Debian's arm64 kernel has the
 * PL011 console and the generic PCIe host built in, so only the virtio modules are listed.
 */
const INITRD_MODULES: Record<VdevBoard, string[]> = {
  x86: ['virtio_pci', 'virtio_blk', 'btrfs'],
  arm64: ['virtio_pci', 'virtio_mmio', 'virtio_blk', 'btrfs'],
};

/** The serial console of each board (the board profile's console=): the 16550 on x86, the PL011 on virt. */
export const SERIAL_CONSOLE: Record<VdevBoard, string> = { x86: 'ttyS0', arm64: 'ttyAMA0' };

export interface CowrootRootfsOptions {
  /** the virtual device board the rootfs boots on: its initrd modules and serial console */
  board: VdevBoard;
  /** the bundled agent (dist/cowroot-agent.js, `npm run build:agent`) */
  agentBundle: string;
  /** the FAT boot partition's label and where Linux mounts it (the board profile's env.linuxMountPoint) */
  bootLabel: string;
  bootMount: string;
  /** `journal+console` also shows the agent's log on the serial console (tests read it there) */
  agentOutput?: 'journal' | 'journal+console';
  /**
   * Drop the kernel modules of hardware the virtual device does not have (drivers/ except virtio, block,
   * char, watchdog and virtio_net; sound/): 270 of Debian's 385 MiB of modules, which every release
   * stream, factory image and test run would otherwise carry. A real board's release keeps its drivers.
   */
  virtualHardwareOnly?: boolean;
}

/**
 * Makes an extracted Debian rootfs a cowroot release rootfs, as docs/factory.md "Where the agent reads its
 * config" lists: the bundled agent at /usr/lib/cowroot, the project's two units enabled, the boot partition
 * in fstab (the env lives there), empty health-check dirs, the initramfs-tools hook + local-bottom script +
 * cowroot-workspace.sh, and an initrd rebuilt in a chroot with them. DHCP on the first ethernet comes from
 * systemd-networkd, so network-online.target (the agent unit's After=) means an address.
 */
export async function installCowroot(rootfs: string, options: CowrootRootfsOptions): Promise<void> {
  const at = (path: string) => join(rootfs, path);
  await mkdir(at('usr/lib/cowroot'), { recursive: true });
  await copyFile(options.agentBundle, at('usr/lib/cowroot/cowroot-agent.js'));
  await chmod(at('usr/lib/cowroot/cowroot-agent.js'), 0o755);
  await mkdir(at('usr/share/doc/cowroot'), { recursive: true });
  for (const doc of ['agent.md', 'factory.md'])
    await copyFile(join(repo, 'docs', doc), at(`usr/share/doc/cowroot/${doc}`));

  for (const unit of ['cowroot-agent.service', 'var-lib-cowroot-pool.mount']) {
    await copyFile(join(repo, 'deploy/systemd', unit), at(`etc/systemd/system/${unit}`));
  }
  if (options.agentOutput === 'journal+console') {
    await mkdir(at('etc/systemd/system/cowroot-agent.service.d'), { recursive: true });
    await writeFile(
      at('etc/systemd/system/cowroot-agent.service.d/console.conf'),
      '[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n',
    );
  }
  await mkdir(at('var/lib/cowroot/pool'), { recursive: true });
  await mkdir(at(options.bootMount.slice(1)), { recursive: true });
  await writeFile(at('etc/fstab'), `LABEL=${options.bootLabel} ${options.bootMount} vfat defaults 0 0\n`);
  for (const dir of ['etc/cowroot/required.d', 'etc/cowroot/wanted.d']) await mkdir(at(dir), { recursive: true });

  await mkdir(at('etc/systemd/network'), { recursive: true });
  await writeFile(
    at('etc/systemd/network/80-cowroot-dhcp.network'),
    '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n',
  );
  await writeFile(at('etc/hostname'), 'cowroot-vdev\n');
  // systemd makes a machine id at every boot of the throwaway workspace (an empty file, not a missing one)
  await writeFile(at('etc/machine-id'), '');
  await run('systemctl', [
    `--root=${rootfs}`,
    'enable',
    'cowroot-agent.service',
    'var-lib-cowroot-pool.mount',
    'systemd-networkd.service',
    'systemd-networkd-wait-online.service',
  ]);
  // a device's rootfs is a signed release: apt's timers would only download what no workspace keeps
  for (const timer of ['apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer']) {
    await rm(at(`etc/systemd/system/timers.target.wants/${timer}`), { force: true });
  }
  // getty on the serial console would only clutter the log the tests read (systemd's getty generator
  // starts one on the console= device whether enabled or not, so it is masked)
  await rm(at('etc/systemd/system/getty.target.wants'), { recursive: true, force: true });
  const serialGetty = at(`etc/systemd/system/serial-getty@${SERIAL_CONSOLE[options.board]}.service`);
  await symlink('/dev/null', serialGetty).catch(() => undefined);

  // the initramfs step (deploy/initramfs): installed exactly where the hook's own comment says
  await mkdir(at('usr/share/cowroot'), { recursive: true });
  await copyFile(join(repo, 'deploy/initramfs/cowroot-workspace.sh'), at('usr/share/cowroot/cowroot-workspace.sh'));
  await copyFile(join(repo, 'deploy/initramfs/hooks/cowroot'), at('etc/initramfs-tools/hooks/cowroot'));
  await copyFile(
    join(repo, 'deploy/initramfs/scripts/local-bottom/cowroot'),
    at('etc/initramfs-tools/scripts/local-bottom/cowroot'),
  );
  await chmod(at('etc/initramfs-tools/hooks/cowroot'), 0o755);
  await chmod(at('etc/initramfs-tools/scripts/local-bottom/cowroot'), 0o755);
  await writeFile(at('etc/initramfs-tools/modules'), `${INITRD_MODULES[options.board].join('\n')}\n`);
  await writeFile(at('etc/initramfs-tools/conf.d/cowroot.conf'), 'MODULES=list\nCOMPRESS=zstd\n');
  if (options.virtualHardwareOnly) await pruneModules(rootfs);
  await updateInitramfs(rootfs);
}

const KEPT_DRIVERS = new Set(['virtio', 'block', 'char', 'watchdog', 'net']);
const KEPT_NET_DRIVERS = /^(virtio_net|net_failover)\.ko/;

async function pruneModules(rootfs: string): Promise<void> {
  for (const version of await readdir(join(rootfs, 'lib/modules'))) {
    const kernel = join(rootfs, 'lib/modules', version, 'kernel');
    await rm(join(kernel, 'sound'), { recursive: true, force: true });
    for (const entry of await readdir(join(kernel, 'drivers'))) {
      if (!KEPT_DRIVERS.has(entry)) await rm(join(kernel, 'drivers', entry), { recursive: true, force: true });
    }
    for (const entry of await readdir(join(kernel, 'drivers/net'))) {
      if (!KEPT_NET_DRIVERS.test(entry)) await rm(join(kernel, 'drivers/net', entry), { recursive: true, force: true });
    }
    // modules.dep and friends must not name the removed files
    await run('chroot', [rootfs, 'depmod', '-a', version]);
  }
}

/** `update-initramfs -c` for every kernel in the rootfs, in a chroot with /proc, /sys and /dev bound. */
async function updateInitramfs(rootfs: string): Promise<void> {
  const versions = (await readdir(join(rootfs, 'lib/modules'))).sort();
  if (versions.length === 0) throw new Error(`${rootfs} has no kernel modules: is linux-image installed?`);
  const mounted: string[] = [];
  try {
    for (const fs of ['proc', 'sys', 'dev']) {
      const target = join(rootfs, fs);
      await run('mount', ['--rbind', `/${fs}`, target]);
      await run('mount', ['--make-rslave', target]);
      mounted.push(target);
    }
    for (const version of versions) {
      await rm(join(rootfs, `boot/initrd.img-${version}`), { force: true });
      await run('chroot', [rootfs, 'update-initramfs', '-c', '-k', version]);
    }
  } finally {
    for (const target of mounted.reverse())
      await run('umount', ['-R', target]).catch(() => run('umount', ['-lR', target]));
  }
}
