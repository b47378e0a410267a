import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandRunner } from '../command-runner';

export interface LoopBtrfs {
  /** where the top level (subvolid=5) is mounted */
  mount: string;
  loopDevice: string;
  image: string;
  /** umount, detach, remove the temp dir; safe to call twice and after a partial setup */
  cleanup(): Promise<void>;
}

/**
 * A real btrfs for tests: a sparse image file, mkfs.btrfs, `losetup --find --show`, mounted with
 * subvolid=5 in a fresh temp dir. Needs root and /dev/loop-control. If any step fails, what was made
 * so far is undone before the error is rethrown.
 */
export async function createLoopBtrfs(
  options: { sizeMiB?: number; label?: string; runner?: CommandRunner } = {},
): Promise<LoopBtrfs> {
  const runner = options.runner ?? new CommandRunner();
  const dir = await mkdtemp(join(tmpdir(), `cowroot-${options.label ?? 'btrfs'}-`));
  const image = join(dir, 'pool.img');
  const mount = join(dir, 'mnt');
  let loopDevice = '';
  let mounted = false;
  let cleaned = false;

  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    const problems: string[] = [];
    if (mounted) {
      await runner.run('umount', [mount]).catch(async (error: Error) => {
        // something still holds it (a killed receive): detach lazily so the loop device can go
        problems.push(error.message);
        await runner.run('umount', ['-l', mount]).catch((e: Error) => problems.push(e.message));
      });
    }
    if (loopDevice) await runner.run('losetup', ['-d', loopDevice]).catch((e: Error) => problems.push(e.message));
    await rm(dir, { recursive: true, force: true });
    if (problems.length) console.warn(`loop btrfs cleanup: ${problems.join('; ')}`);
  };

  try {
    await mkdir(mount);
    await writeFile(image, '');
    // sparse: the image takes only what btrfs writes
    await truncate(image, (options.sizeMiB ?? 512) * 1024 * 1024);
    await runner.run('mkfs.btrfs', ['-q', ...(options.label ? ['-L', options.label] : []), image]);
    loopDevice = (await runner.run('losetup', ['--find', '--show', image])).stdout.trim();
    await runner.run('mount', ['-o', 'subvolid=5', loopDevice, mount]);
    mounted = true;
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { mount, loopDevice, image, cleanup };
}
