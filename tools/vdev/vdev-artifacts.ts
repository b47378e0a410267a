import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandRunner } from '@cowroot/device';
import { renderSwitchEnvInclude } from './switch-env-include';

/** The QEMU boards the virtual device runs on (build-artifacts.sh, make-disk.sh). */
export type VdevBoard = 'x86' | 'arm64';
export const VDEV_BOARDS: readonly VdevBoard[] = ['x86', 'arm64'];
/** The QEMU system emulator each board runs in. */
export const QEMU_COMMAND: Record<VdevBoard, string> = { x86: 'qemu-system-i386', arm64: 'qemu-system-aarch64' };

/** What a virtual device boots: the cached u-boot and guest packages, and a freshly assembled disk. */
export interface VdevArtifacts {
  board: VdevBoard;
  /** u-boot's firmware image: u-boot.rom (x86) or u-boot.bin (arm64), given to QEMU with -bios */
  uBootRom: string;
  /** u-boot's default env as text (`make u-boot-initial-env`) */
  uBootInitialEnv: string;
  /** the extracted Debian packages (i386 or arm64) the guest is made of */
  guestRoot: string;
  /** the disk image every device copies: snapshots 1 (current), 2 (good), 3 (corrupt kernel) */
  baseDisk: string;
}

const runner = new CommandRunner();

/** stdout of a host command; a failure names the command line and the end of its stderr (CommandError). */
async function run(command: string, args: string[]): Promise<string> {
  return (await runner.run(command, args, { maxStdoutBytes: 64 * 1024 * 1024 })).stdout;
}

function parseKeyValues(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) values[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return values;
}

/**
 * Builds (or takes from the cache, see build-artifacts.sh) u-boot and the guest packages of `board`, then
 * assembles the base disk in `workDir` from this checkout's boot.cmd, initramfs and guest agent. Cold:
 * about a minute on x86, a few minutes on arm64 (cross-built u-boot, downloads); warm: a few seconds.
 * `toolsDir` is this folder (a bundled caller passes it, __dirname being the bundle's).
 */
export async function prepareVdevArtifacts(
  workDir: string,
  toolsDir: string = __dirname,
  board: VdevBoard = 'x86',
): Promise<VdevArtifacts> {
  if (!VDEV_BOARDS.includes(board)) throw new Error(`unknown virtual device board '${board}' (x86 or arm64)`);
  const built = parseKeyValues(await run('bash', [join(toolsDir, 'build-artifacts.sh'), board]));
  const { u_boot_rom: uBootRom, u_boot_env: uBootInitialEnv, guest_root: guestRoot } = built;
  if (!uBootRom || !uBootInitialEnv || !guestRoot) {
    throw new Error(`build-artifacts.sh did not report its outputs: ${JSON.stringify(built)}`);
  }
  const switchInclude = join(workDir, 'switch-env.sh');
  await writeFile(switchInclude, renderSwitchEnvInclude());
  const baseDisk = join(workDir, 'base-disk.img');
  await run('bash', [join(toolsDir, 'make-disk.sh'), baseDisk, uBootInitialEnv, guestRoot, switchInclude, board]);
  return { board, uBootRom, uBootInitialEnv, guestRoot, baseDisk };
}
