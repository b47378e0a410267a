import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ENV, requestTrial } from '@cowroot/device';
import { Command, Option } from 'commander';
import { prepareVdevArtifacts, VDEV_BOARDS, type VdevBoard } from './vdev-artifacts';
import { VirtualDevice } from './virtual-device';

/**
 * Boots the virtual device by hand with its serial console on this terminal (tools/vdev/run.sh).
 * The device's disk is kept between runs under the cache dir, so a trial requested in one run is tried in
 * the next; --fresh starts again from the base disk. Quit QEMU with Ctrl-A X.
 */
async function main(): Promise<void> {
  const program = new Command('vdev')
    .description('boot the cowroot virtual device (u-boot + btrfs snapshots in QEMU) and watch its console')
    .requiredOption('--tools-dir <dir>', 'tools/vdev of this checkout (set by run.sh)')
    .addOption(new Option('--board <board>', 'the QEMU board').choices(VDEV_BOARDS).default('x86'))
    .option('--fresh', 'start from a new disk: snapshots 1 (current), 2 (good), 3 (corrupt kernel)')
    .option(
      '--control <command...>',
      'guest agent commands for this boot: touch-workspace, confirm, reject, request <id>, commit <id>, hang',
    )
    .option('--request <snapshot>', 'request a trial of <snapshot> from the host before booting (fw_setenv)')
    .option('--print-env', 'print the u-boot env after the boot')
    .parse();
  const options = program.opts<{
    toolsDir: string;
    board: VdevBoard;
    fresh?: boolean;
    control?: string[];
    request?: string;
    printEnv?: boolean;
  }>();

  const cacheName = options.board === 'x86' ? 'vdev' : `vdev-${options.board}`;
  const home = join(process.env.COWROOT_CACHE_DIR ?? '/var/cache/cowroot', cacheName, 'by-hand');
  if (options.fresh) await rm(home, { recursive: true, force: true });
  await mkdir(home, { recursive: true });
  console.error('[vdev] preparing u-boot, kernel and the base disk (cold: ~1 min, warm: seconds)');
  const artifacts = await prepareVdevArtifacts(home, options.toolsDir, options.board);
  const fresh = !existsSync(join(home, 'device', 'disk.img'));
  const device = fresh
    ? await VirtualDevice.create(join(home, 'device'), artifacts)
    : await VirtualDevice.open(join(home, 'device'), artifacts);
  await device.setControl((options.control ?? []).map((c) => c.replace(/=/, ' ')));
  if (options.request) await device.writeEnv(requestTrial(options.request));
  console.error(`[vdev] disk ${device.disk}; env before: ${JSON.stringify(await device.readEnv(), pickProtocol)}`);
  console.error('[vdev] booting (Ctrl-A X quits QEMU)');
  const qemu = spawn(device.qemuCommand(), device.qemuArgs(['-serial', 'mon:stdio']), { stdio: 'inherit' });
  await new Promise<void>((resolve, reject) => {
    qemu.on('error', reject);
    qemu.on('close', () => resolve());
  });
  const env = await device.readEnv();
  console.error(`[vdev] env after: ${JSON.stringify(env, pickProtocol)}`);
  if (options.printEnv) console.log(env);
}

function pickProtocol(this: unknown, key: string, value: unknown): unknown {
  return key === '' || (Object.values(ENV) as string[]).includes(key) ? value : undefined;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
