import { chmod, mkdir, open, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ErrorCode, SnapshotOrigin } from '@cowroot/protocol';
import { BtrfsAdapter, DeviceError, SnapshotStore, writeFileAtomic } from '@cowroot/device';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { CONFIG_FILES, POOL_CONFIG_DIR, renderAgentConfig } from './agent-config.renderer';
import { attachPartition, ImageJob, ImagePlan, MiB, throwIfInterrupted } from './image-plan';
import { renderFwEnvConfig } from './uboot-env-image';
import { UIMAGE_HEADER_BYTES, uImageArch, uImageFitsArch } from './uimage-header';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * The btrfs pool (docs/factory.md "What is on the image"): mkfs, the factory snapshot received by the
 * device core from the verified stream, its meta, the workspace, and config/ with the device's identity.
 */
export async function writePool(job: ImageJob): Promise<void> {
  const { plan, work, commands, undo } = job;
  const { profile, release } = plan;
  const device = await attachPartition(job, profile.pool);
  await commands.run('mkfs.btrfs', ['-q', '-f', '-L', profile.pool.label ?? 'cowroot', device]);
  const mount = join(work, 'pool');
  await mkdir(mount);
  await job.cleanup.run('mount', ['-t', 'btrfs', '-o', 'subvolid=5', device, mount]);
  undo.push(`mount ${mount}`, () =>
    job.cleanup.run('umount', [mount]).catch(() => job.cleanup.run('umount', ['-l', mount])),
  );
  throwIfInterrupted(job);

  // the device core's own receive (docs/device.md §2.1), on the stream verified in preflight
  const btrfs = new BtrfsAdapter();
  const store = new SnapshotStore({ poolPath: mount, btrfs });
  await store.init();
  const id = release.snapshotId;
  try {
    await store.receive(
      release.manifest.compression === 'zstd'
        ? { file: release.stream, through: { command: 'zstd', args: ['-d', '-c', '-q'] } }
        : { file: release.stream },
      {
        snapshotId: id,
        release: release.manifest.release,
        expectedReceivedUuid: release.manifest.snapshotUuid,
        signal: job.signal,
      },
    );
    await store.settled();
  } catch (error) {
    if (error instanceof DeviceError && error.code === ErrorCode.DiskFull) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `the pool partition of board ${profile.name} (${profile.pool.size / MiB} MiB) is too small for release ${release.manifest.release.name}@${release.manifest.release.version}: btrfs receive ran out of space; enlarge the pool partition in the profile`,
      );
    }
    throw new ReleaseError(
      ReleaseErrorCode.CommandFailed,
      `receiving the release into the pool: ${(error as Error).message}`,
    );
  }
  await checkKernelArch(store.snapshotPath(id), plan);
  // manufacturing made it (docs/device.md §2 origin table); the release and received_uuid stay
  const metadata = await store.readMetadata(id);
  await writeFileAtomic(
    store.metadataPath(id),
    `${JSON.stringify({ ...metadata, origin: SnapshotOrigin.Factory, parent: null }, null, 2)}\n`,
  );
  // what the initramfs makes at every boot anyway; here so the pool is complete before its first boot
  await btrfs.snapshot(store.snapshotPath(id), store.workspacePath, { readOnly: false });
  await writeDeviceConfig(plan, join(mount, POOL_CONFIG_DIR));
  await noteMissingHealthDirs(store.snapshotPath(id), job.log);
  await btrfs.syncFilesystem(mount);
  await undo.runNow(`mount ${mount}`);
  await undo.runNow(`loop ${device}`);
  job.log(
    `pool: snapshots/${id} received from ${basename(release.stream)} (received_uuid ${release.manifest.snapshotUuid}), meta/${id}.json, workspace, ${POOL_CONFIG_DIR}/ for device ${plan.identity.deviceId}`,
  );
}

/** The kernel uImage must be built for the board's arch (mkimage -A in `cowroot-release build --arch`). */
async function checkKernelArch(snapshot: string, plan: ImagePlan): Promise<void> {
  const path = join(snapshot, 'boot', 'uImage');
  const header = Buffer.alloc(UIMAGE_HEADER_BYTES);
  try {
    const handle = await open(path, 'r');
    try {
      await handle.read(header, 0, UIMAGE_HEADER_BYTES, 0);
    } finally {
      await handle.close();
    }
  } catch {
    throw new ReleaseError(
      ReleaseErrorCode.NoKernel,
      `release ${plan.release.manifest.release.name}@${plan.release.manifest.release.version} has no /boot/uImage; build it with cowroot-release build`,
    );
  }
  if (!uImageFitsArch(header, plan.profile.arch)) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `the kernel of release ${plan.release.manifest.release.name}@${plan.release.manifest.release.version} is built for ${uImageArch(header) ?? 'no u-boot image'}, board ${plan.profile.name} boots ${plan.profile.arch}; build the release with --arch ${plan.profile.arch}`,
    );
  }
}

/** config/ in the pool: survives every update and rollback, unlike anything inside a snapshot. */
async function writeDeviceConfig(plan: ImagePlan, dir: string): Promise<void> {
  await mkdir(dir, { mode: 0o700 });
  const files: Array<[string, string, number]> = [
    [
      CONFIG_FILES.agent,
      renderAgentConfig({
        deviceId: plan.identity.deviceId,
        mqttUrl: plan.mqttUrl,
        httpUrl: plan.httpUrl,
        hasCa: plan.ca !== null,
        poolMount: plan.poolMount,
      }),
      0o644,
    ],
    [CONFIG_FILES.credential, `${plan.identity.credential}\n`, 0o600],
    [CONFIG_FILES.releaseKey, plan.releaseKeyPem, 0o644],
    [CONFIG_FILES.fwEnv, renderFwEnvConfig(plan.profile), 0o644],
    ...(plan.ca !== null ? [[CONFIG_FILES.ca, plan.ca, 0o644] as [string, string, number]] : []),
  ];
  for (const [name, content, mode] of files) {
    await writeFile(join(dir, name), content, { mode, flag: 'wx' });
    await chmod(join(dir, name), mode);
  }
}

async function noteMissingHealthDirs(snapshot: string, log: (line: string) => void): Promise<void> {
  for (const dir of ['etc/cowroot/required.d', 'etc/cowroot/wanted.d']) {
    if (!(await exists(join(snapshot, dir)))) {
      log(`note: the release has no /${dir}; the agent refuses to start until the rootfs has it (docs/factory.md)`);
    }
  }
}
