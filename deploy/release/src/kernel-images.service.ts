import { CommandRunner } from '@cowroot/device';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rename, rm, stat } from 'node:fs/promises';
import { basename, join, posix, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ReleaseError, ReleaseErrorCode } from './release-error';

/** Names under /boot that u-boot's boot script loads (uboot/boot.cmd). */
export const BOOT_KERNEL_IMAGE = 'uImage';
export const BOOT_INITRD_IMAGE = 'uInitrd';

export type Arch = 'arm' | 'arm64' | 'x86';
export const ARCHES: readonly Arch[] = ['arm', 'arm64', 'x86'];

/**
 * How the kernel uImage is typed. x86 bzImage and arm zImage run wherever they were loaded, so they are
 * `kernel_noload` images (bootm leaves them in place; this is what the virtual device boots). An arm64
 * Image must sit at a 2 MiB aligned address in the board's RAM, so bootm has to copy it to a load address
 * that only the board knows: arm64 needs --load-address.
 */
export function kernelImageArgs(arch: Arch, loadAddress?: string, entryPoint?: string): string[] {
  if (loadAddress) return ['-T', 'kernel', '-a', loadAddress, '-e', entryPoint ?? loadAddress];
  if (entryPoint) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      '--entry-point needs --load-address (without both the kernel runs where u-boot loaded it)',
    );
  }
  if (arch === 'arm64') {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      "--arch arm64 needs --load-address: the board's RAM base + 0x80000 (e.g. 0x40080000 on QEMU virt, 0x80080000 on many SoCs)",
    );
  }
  return ['-T', 'kernel_noload', '-a', '0', '-e', '0'];
}

/**
 * mkimage's -C for a kernel file. Debian's arm64 vmlinuz is a gzipped Image, which cannot run in place
 * (unlike a self-extracting bzImage or zImage): `-C gzip` has bootm unpack it to the load address. A gzip
 * kernel without a load address would be unpacked onto itself, so it is refused.
 */
export async function kernelCompression(kernel: string, loadAddress?: string): Promise<'gzip' | 'none'> {
  const handle = await open(kernel, 'r');
  const magic = Buffer.alloc(2);
  try {
    await handle.read(magic, 0, 2, 0);
  } finally {
    await handle.close();
  }
  if (magic[0] !== 0x1f || magic[1] !== 0x8b) return 'none';
  if (!loadAddress) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `kernel ${kernel} is gzip-compressed: give --load-address, where u-boot's bootm unpacks it`,
    );
  }
  return 'gzip';
}

export interface BootFiles {
  /** host paths of the kernel and initrd to wrap */
  kernel: string;
  initrd: string;
}

export interface ImageOptions {
  arch: Arch;
  loadAddress?: string;
  entryPoint?: string;
}

const KERNEL_LINKS = ['boot/vmlinuz', 'vmlinuz', 'boot/Image', 'boot/zImage'];
const KERNEL_PREFIXES = ['vmlinuz-', 'Image-', 'zImage-'];
const INITRD_LINKS = ['boot/initrd.img', 'initrd.img', 'boot/initrd', 'boot/initramfs.img'];
const INITRD_PREFIXES = ['initrd.img-', 'initrd-', 'initramfs-'];

/**
 * Resolves a path inside a rootfs, following symlinks as the rootfs would (an absolute target is relative
 * to the rootfs, not to the build host). Null when it does not exist, is not a regular file, or escapes.
 */
export async function resolveInRootfs(rootfs: string, relative: string): Promise<string | null> {
  let current = posix.normalize(relative);
  for (let hops = 0; hops < 16; hops += 1) {
    if (current.startsWith('..')) return null;
    const hostPath = join(rootfs, current);
    let info;
    try {
      info = await lstat(hostPath);
    } catch {
      return null;
    }
    if (info.isFile()) return hostPath;
    if (!info.isSymbolicLink()) return null;
    const target = await readlink(hostPath);
    current = target.startsWith('/') ? posix.normalize(target.slice(1)) : posix.join(posix.dirname(current), target);
  }
  return null;
}

async function filesIn(dir: string, prefixes: string[]): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  return names.filter((name) => prefixes.some((prefix) => name.startsWith(prefix)) && !name.endsWith('.old')).sort();
}

/**
 * Image header name: the input's file name (u-boot keeps 32 bytes). Not the release name, which would make
 * every release's image differ and defeat keeping an unchanged kernel's extents shared.
 */
function headerName(input: string): string {
  return basename(input).slice(0, 31);
}

async function sha256Of(path: string): Promise<string | null> {
  try {
    const hash = createHash('sha256');
    await pipeline(createReadStream(path), hash);
    return hash.digest('hex');
  } catch {
    return null;
  }
}

async function assertReadableFile(path: string, what: string, code: ReleaseErrorCode): Promise<string> {
  const absolute = resolve(path);
  try {
    if ((await stat(absolute)).isFile()) return absolute;
  } catch {
    // reported below
  }
  throw new ReleaseError(code, `${what} ${absolute} is not a readable file`);
}

/**
 * Finds the kernel and initrd of a rootfs and wraps them as u-boot legacy images in its /boot: the kernel
 * as it is (`-C none` for a self-decompressing bzImage/zImage or a plain Image; `-C gzip` for a gzipped
 * arm64 Image, which bootm unpacks, see kernelCompression) and the initrd as a ramdisk image.
 */
export class KernelImages {
  constructor(private readonly runner: CommandRunner) {}

  /** The kernel and initrd to wrap: the given paths, else what the rootfs's /boot holds. */
  async locate(rootfs: string, given: { kernel?: string; initrd?: string } = {}): Promise<BootFiles> {
    const kernel = given.kernel
      ? await assertReadableFile(given.kernel, 'kernel', ReleaseErrorCode.NoKernel)
      : await this.findKernel(rootfs);
    const initrd = given.initrd
      ? await assertReadableFile(given.initrd, 'initrd', ReleaseErrorCode.NoInitrd)
      : await this.findInitrd(rootfs, kernel);
    return { kernel, initrd };
  }

  /**
   * Writes /boot/uImage and /boot/uInitrd into `root`. The image timestamp comes from the input's mtime
   * (SOURCE_DATE_EPOCH), so an unchanged kernel gives a byte-identical image; that one is then left in
   * place so its extents stay shared with the base release and the incremental stream does not carry it.
   */
  async install(
    root: string,
    files: BootFiles,
    options: ImageOptions,
  ): Promise<{ kernelChanged: boolean; initrdChanged: boolean }> {
    const bootDir = join(root, 'boot');
    await mkdir(bootDir, { recursive: true });
    const common = ['-A', options.arch, '-O', 'linux'];
    const kernelChanged = await this.writeImage(files.kernel, join(bootDir, BOOT_KERNEL_IMAGE), [
      ...common,
      '-C',
      await kernelCompression(files.kernel, options.loadAddress),
      ...kernelImageArgs(options.arch, options.loadAddress, options.entryPoint),
      '-n',
      headerName(files.kernel),
    ]);
    const initrdChanged = await this.writeImage(files.initrd, join(bootDir, BOOT_INITRD_IMAGE), [
      ...common,
      '-C',
      'none',
      '-T',
      'ramdisk',
      '-a',
      '0',
      '-e',
      '0',
      '-n',
      headerName(files.initrd),
    ]);
    return { kernelChanged, initrdChanged };
  }

  private async writeImage(input: string, output: string, args: string[]): Promise<boolean> {
    const temporary = `${output}.cowroot-new`;
    const epoch = Math.floor((await stat(input)).mtimeMs / 1000);
    try {
      await this.runner.run('mkimage', [...args, '-d', input, temporary], {
        env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
      });
      const [before, after] = await Promise.all([sha256Of(output), sha256Of(temporary)]);
      if (before !== null && before === after) {
        await rm(temporary);
        return false;
      }
      await rename(temporary, output);
      return true;
    } finally {
      await rm(temporary, { force: true });
    }
  }

  private async findKernel(rootfs: string): Promise<string> {
    for (const link of KERNEL_LINKS) {
      const found = await resolveInRootfs(rootfs, link);
      if (found) return found;
    }
    const candidates = await filesIn(join(rootfs, 'boot'), KERNEL_PREFIXES);
    if (candidates.length === 1) return join(rootfs, 'boot', candidates[0]);
    if (candidates.length > 1) {
      throw new ReleaseError(
        ReleaseErrorCode.NoKernel,
        `rootfs ${rootfs} has several kernels in /boot (${candidates.join(', ')}); choose one with --kernel`,
      );
    }
    throw new ReleaseError(
      ReleaseErrorCode.NoKernel,
      `rootfs ${rootfs} has no kernel (no /boot/vmlinuz*, /boot/Image or /boot/zImage); install one into the rootfs or pass --kernel <file>`,
    );
  }

  private async findInitrd(rootfs: string, kernel: string): Promise<string> {
    const kernelName = basename(kernel);
    const prefix = KERNEL_PREFIXES.find((p) => kernelName.startsWith(p));
    const kernelVersion = prefix ? kernelName.slice(prefix.length) : null;
    const matching = kernelVersion
      ? [`boot/initrd.img-${kernelVersion}`, `boot/initramfs-${kernelVersion}.img`, `boot/initrd-${kernelVersion}`]
      : [];
    for (const link of [...matching, ...INITRD_LINKS]) {
      const found = await resolveInRootfs(rootfs, link);
      if (found) return found;
    }
    const candidates = await filesIn(join(rootfs, 'boot'), INITRD_PREFIXES);
    if (candidates.length === 1) return join(rootfs, 'boot', candidates[0]);
    if (candidates.length > 1) {
      throw new ReleaseError(
        ReleaseErrorCode.NoInitrd,
        `rootfs ${rootfs} has several initrds in /boot (${candidates.join(', ')}); choose one with --initrd`,
      );
    }
    throw new ReleaseError(
      ReleaseErrorCode.NoInitrd,
      `rootfs ${rootfs} has no initrd (no /boot/initrd.img*, /boot/initramfs*); cowroot needs its initramfs step: build one into the rootfs or pass --initrd <file>`,
    );
  }
}
