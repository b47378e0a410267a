import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandRunner } from '../src/command-runner.adapter';

/**
 * A throwaway btrfs filesystem for tests: sparse image file → loop device (whatever number is free) →
 * mounted in the given directory. `dispose()` undoes what was done, in reverse, and never throws.
 */
export class LoopBtrfs {
  private readonly undo: Array<() => Promise<unknown>> = [];
  private constructor(
    private readonly runner: CommandRunner,
    readonly mountPoint: string,
  ) {}

  static async create(runner: CommandRunner, dir: string, sizeMiB = 256): Promise<LoopBtrfs> {
    const fs = new LoopBtrfs(runner, join(dir, 'mnt'));
    try {
      await mkdir(fs.mountPoint, { recursive: true });
      const image = join(dir, 'btrfs.img');
      await runner.run({ command: 'truncate', args: ['-s', `${sizeMiB}M`, image] });
      await runner.run({ command: 'mkfs.btrfs', args: ['-q', '-f', image] });
      const device = (await runner.run({ command: 'losetup', args: ['--find', '--show', image] })).trim();
      fs.undo.push(() => runner.run({ command: 'losetup', args: ['-d', device] }));
      await runner.run({ command: 'mount', args: ['-t', 'btrfs', device, fs.mountPoint] });
      fs.undo.push(() =>
        runner
          .run({ command: 'umount', args: [fs.mountPoint] })
          .catch(() => runner.run({ command: 'umount', args: ['-l', fs.mountPoint] })),
      );
    } catch (error) {
      await fs.dispose();
      throw error;
    }
    return fs;
  }

  async dispose(): Promise<void> {
    while (this.undo.length > 0) {
      const step = this.undo.pop();
      await step?.().catch((error: Error) => console.warn(`cleanup: ${error.message}`));
    }
  }
}
