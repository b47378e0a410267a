import { CommandError, CommandRunner as DeviceCommandRunner, RunOptions } from '@cowroot/device';
import { ReleaseError, ReleaseErrorCode } from '../release-error';

/** Debian package of each tool the image writer runs, for "not found" errors. */
const PACKAGE_OF: Record<string, string> = {
  sfdisk: 'fdisk',
  losetup: 'mount',
  'mkfs.vfat': 'dosfstools',
  mcopy: 'mtools',
  'mkfs.btrfs': 'btrfs-progs',
  btrfs: 'btrfs-progs',
  mkenvimage: 'u-boot-tools',
  mkimage: 'u-boot-tools',
  bmaptool: 'bmap-tools',
  zstd: 'zstd',
};

/**
 * The image writer's door to the OS: the device core's CommandRunner (argument arrays, stdin from a string
 * or a file, stderr kept), with its failures turned into the one-line ReleaseError the CLI prints. An
 * abort signal (SIGINT/SIGTERM of the tool) kills the running command, so the cleanup runs at once.
 */
export class ImageCommands {
  constructor(
    private readonly runner = new DeviceCommandRunner(),
    private readonly signal?: AbortSignal,
  ) {}

  async run(command: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
    try {
      return (await this.runner.run(command, args, { signal: this.signal, ...options })).stdout;
    } catch (error) {
      if (error instanceof CommandError && error.failure === 'spawn' && /ENOENT/.test(error.message)) {
        const pkg = PACKAGE_OF[command];
        throw new ReleaseError(
          ReleaseErrorCode.CommandMissing,
          `command ${command} not found${pkg ? ` (install the Debian package ${pkg})` : ''}`,
        );
      }
      if (error instanceof CommandError && error.failure === 'aborted') {
        throw new ReleaseError(ReleaseErrorCode.CommandFailed, `interrupted while running ${error.commandLine}`);
      }
      const message = error instanceof Error ? error.message.replace(/\s*\n\s*/g, ' / ') : String(error);
      throw new ReleaseError(ReleaseErrorCode.CommandFailed, message);
    }
  }
}

/**
 * What a build made that must go again if it fails: loop devices, mounts, temp files, undone in reverse.
 * `runNow` runs one step early (the normal path), `undoAll` runs the rest and never throws.
 */
export class Undo {
  private readonly steps: Array<{ what: string; step: () => Promise<unknown> }> = [];

  push(what: string, step: () => Promise<unknown>): void {
    this.steps.push({ what, step });
  }

  /** Runs and forgets the most recent step named `what` (e.g. detach a loop device on the normal path). */
  async runNow(what: string): Promise<void> {
    const index = this.steps.map((s) => s.what).lastIndexOf(what);
    if (index < 0) return;
    const [{ step }] = this.steps.splice(index, 1);
    await step();
  }

  async undoAll(warn: (line: string) => void): Promise<void> {
    while (this.steps.length > 0) {
      const { what, step } = this.steps.pop()!;
      await step().catch((error: Error) => warn(`cleanup of ${what} failed: ${error.message}`));
    }
  }
}
