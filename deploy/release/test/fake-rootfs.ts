import { randomBytes } from 'node:crypto';
import { link, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A small rootfs shaped like a Debian one: kernel and initrd in /boot with the /vmlinuz and /initrd.img
 * links, some binaries (random, so compression cannot hide them), config, a symlink and a hard link.
 * The "kernel" is random bytes: mkimage does not care, and no test boots it.
 */
export async function writeFakeRootfs(root: string, options: { kernel?: boolean } = {}): Promise<void> {
  const kernelVersion = '6.1.0-test-amd64';
  for (const dir of ['boot', 'etc', 'usr/bin', 'usr/lib', 'var/lib']) await mkdir(join(root, dir), { recursive: true });
  if (options.kernel ?? true) {
    await writeFile(join(root, 'boot', `vmlinuz-${kernelVersion}`), randomBytes(1024 * 1024));
    await symlink(`boot/vmlinuz-${kernelVersion}`, join(root, 'vmlinuz'));
  }
  await writeFile(join(root, 'boot', `initrd.img-${kernelVersion}`), randomBytes(512 * 1024));
  await symlink(`boot/initrd.img-${kernelVersion}`, join(root, 'initrd.img'));
  await writeFile(join(root, 'usr/lib', 'libbig.so'), randomBytes(3 * 1024 * 1024));
  await writeFile(join(root, 'usr/bin', 'tool'), randomBytes(256 * 1024), { mode: 0o755 });
  await link(join(root, 'usr/bin', 'tool'), join(root, 'usr/bin', 'tool-alias'));
  await symlink('/usr/bin/tool', join(root, 'usr/bin', 'tool-link'));
  await writeFile(join(root, 'etc', 'hostname'), 'device\n');
  await writeFile(join(root, 'etc', 'os-release'), 'ID=cowroot-test\nVERSION_ID=1.0\n');
  await writeFile(join(root, 'var/lib', 'obsolete'), 'removed in 1.1\n');
  // a fixed old mtime, as packages give their files
  const past = new Date('2024-01-01T00:00:00Z');
  for (const file of [`boot/initrd.img-${kernelVersion}`, 'usr/lib/libbig.so', 'usr/bin/tool'])
    await utimes(join(root, file), past, past);
  if (options.kernel ?? true) await utimes(join(root, 'boot', `vmlinuz-${kernelVersion}`), past, past);
}
