import { CommandRunner } from '@cowroot/device';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { kernelCompression, kernelImageArgs, KernelImages, resolveInRootfs } from './kernel-images.service';
import { ReleaseErrorCode } from './release-error';

describe(KernelImages.name, () => {
  let rootfs: string;
  const images = new KernelImages(new CommandRunner());
  const file = async (path: string) => {
    await mkdir(join(rootfs, path, '..'), { recursive: true });
    await writeFile(join(rootfs, path), path);
  };

  beforeEach(async () => {
    rootfs = await mkdtemp(join(tmpdir(), 'cowroot-rootfs-'));
    await mkdir(join(rootfs, 'boot'));
  });
  afterEach(async () => {
    await rm(rootfs, { recursive: true, force: true });
  });

  it("follows Debian's absolute /vmlinuz link inside the rootfs and pairs the initrd by kernel version", async () => {
    await file('boot/vmlinuz-6.1.0-17-amd64');
    await file('boot/vmlinuz-6.1.0-18-amd64');
    await file('boot/initrd.img-6.1.0-17-amd64');
    await file('boot/initrd.img-6.1.0-18-amd64');
    await symlink('/boot/vmlinuz-6.1.0-18-amd64', join(rootfs, 'vmlinuz'));
    await expect(images.locate(rootfs)).resolves.toEqual({
      kernel: join(rootfs, 'boot/vmlinuz-6.1.0-18-amd64'),
      initrd: join(rootfs, 'boot/initrd.img-6.1.0-18-amd64'),
    });
  });

  it('takes the only arm64 Image and initramfs when there are no links', async () => {
    await file('boot/Image');
    await file('boot/initramfs-6.6.img');
    await expect(images.locate(rootfs)).resolves.toEqual({
      kernel: join(rootfs, 'boot/Image'),
      initrd: join(rootfs, 'boot/initramfs-6.6.img'),
    });
  });

  it('asks which kernel when there are several and no link says', async () => {
    await file('boot/vmlinuz-6.1.0-17-amd64');
    await file('boot/vmlinuz-6.1.0-18-amd64');
    await expect(images.locate(rootfs)).rejects.toMatchObject({
      code: ReleaseErrorCode.NoKernel,
      message: expect.stringMatching(/several kernels .*--kernel/),
    });
  });

  it('says so for a rootfs without a kernel or without an initrd', async () => {
    await expect(images.locate(rootfs)).rejects.toMatchObject({
      code: ReleaseErrorCode.NoKernel,
      message: expect.stringMatching(/has no kernel/),
    });
    await file('boot/zImage');
    await expect(images.locate(rootfs)).rejects.toMatchObject({
      code: ReleaseErrorCode.NoInitrd,
      message: expect.stringMatching(/has no initrd .*--initrd/),
    });
  });

  it('uses given host files and checks they exist', async () => {
    await file('boot/vmlinuz-1');
    await file('boot/initrd.img-1');
    await expect(images.locate(rootfs, { kernel: join(rootfs, 'boot/vmlinuz-1') })).resolves.toMatchObject({
      kernel: join(rootfs, 'boot/vmlinuz-1'),
    });
    await expect(images.locate(rootfs, { initrd: join(rootfs, 'missing') })).rejects.toMatchObject({
      code: ReleaseErrorCode.NoInitrd,
    });
  });

  describe('resolveInRootfs', () => {
    it('never leaves the rootfs through .. or a dangling link', async () => {
      await symlink('../../../etc/passwd', join(rootfs, 'boot', 'escape'));
      await symlink('/boot/missing', join(rootfs, 'dangling'));
      await expect(resolveInRootfs(rootfs, 'boot/escape')).resolves.toBeNull();
      await expect(resolveInRootfs(rootfs, 'dangling')).resolves.toBeNull();
      await expect(resolveInRootfs(rootfs, 'boot')).resolves.toBeNull();
    });
  });

  describe('kernelImageArgs', () => {
    it('leaves x86 and arm kernels where u-boot loaded them', () => {
      expect(kernelImageArgs('x86')).toEqual(['-T', 'kernel_noload', '-a', '0', '-e', '0']);
      expect(kernelImageArgs('arm')).toEqual(['-T', 'kernel_noload', '-a', '0', '-e', '0']);
    });

    it('copies the kernel to a given load address, entry defaulting to it', () => {
      expect(kernelImageArgs('arm64', '0x40080000')).toEqual(['-T', 'kernel', '-a', '0x40080000', '-e', '0x40080000']);
      expect(kernelImageArgs('arm', '0x80008000', '0x80008040')).toEqual([
        '-T',
        'kernel',
        '-a',
        '0x80008000',
        '-e',
        '0x80008040',
      ]);
    });

    it('unpacks a gzipped kernel (Debian arm64 vmlinuz) at the load address, and only there', async () => {
      await writeFile(join(rootfs, 'boot/vmlinuz-gz'), gzipSync(Buffer.from('an arm64 Image')));
      await writeFile(join(rootfs, 'boot/bzImage'), Buffer.from('MZ and a self-extracting kernel'));
      expect(await kernelCompression(join(rootfs, 'boot/vmlinuz-gz'), '0x40400000')).toBe('gzip');
      expect(await kernelCompression(join(rootfs, 'boot/bzImage'))).toBe('none');
      await expect(kernelCompression(join(rootfs, 'boot/vmlinuz-gz'))).rejects.toThrow(
        /gzip-compressed: give --load-address/,
      );
    });

    it('refuses arm64 without a load address and an entry point alone', () => {
      expect(() => kernelImageArgs('arm64')).toThrow(/arm64 needs --load-address/);
      expect(() => kernelImageArgs('x86', undefined, '0x100')).toThrow(/--entry-point needs --load-address/);
    });
  });
});
