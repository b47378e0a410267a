import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandRunner } from '@cowroot/device';
import { renderSwitchEnvInclude } from './switch-env-include';

/** What a virtual device boots: the cached u-boot and guest packages, and a freshly assembled disk. */
export interface VdevArtifacts {
  uBootRom: string;
  /** u-boot's default env as text (`make u-boot-initial-env`) */
  uBootInitialEnv: string;
  /** the extracted i386 Debian packages the guest is made of */
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
 * Builds (or takes from the cache, see build-artifacts.sh) u-boot and the guest packages, then assembles
 * the base disk in `workDir` from this checkout's boot.cmd, initramfs and guest agent. Cold: about a
 * minute (u-boot build, downloads); warm: a few seconds. `toolsDir` is this folder (a bundled caller
 * passes it, __dirname being the bundle's).
 */
export async function prepareVdevArtifacts(workDir: string, toolsDir: string = __dirname): Promise<VdevArtifacts> {
  const built = parseKeyValues(await run('bash', [join(toolsDir, 'build-artifacts.sh')]));
  const { u_boot_rom: uBootRom, u_boot_env: uBootInitialEnv, guest_root: guestRoot } = built;
  if (!uBootRom || !uBootInitialEnv || !guestRoot) {
    throw new Error(`build-artifacts.sh did not report its outputs: ${JSON.stringify(built)}`);
  }
  const switchInclude = join(workDir, 'switch-env.sh');
  await writeFile(switchInclude, renderSwitchEnvInclude());
  const baseDisk = join(workDir, 'base-disk.img');
  await run('bash', [join(toolsDir, 'make-disk.sh'), baseDisk, uBootInitialEnv, guestRoot, switchInclude]);
  return { uBootRom, uBootInitialEnv, guestRoot, baseDisk };
}
