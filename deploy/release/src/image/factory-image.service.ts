import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, mkdtemp, open, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { ErrorCode, SnapshotOrigin } from '@cowroot/protocol';
import {
  BtrfsAdapter,
  CommandRunner as DeviceCommandRunner,
  DeviceError,
  SnapshotStore,
  writeFileAtomic,
} from '@cowroot/device';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { SigningKeys } from '../signing-keys';
import { CONFIG_FILES, DEFAULT_POOL_MOUNT, POOL_CONFIG_DIR, renderAgentConfig } from './agent-config.renderer';
import { BoardProfile, PlacedPartition, loadBoardProfile } from './board-profile';
import { checkMqttUrl, DeviceIdentity, loadCaBundle, loadDeviceIdentity } from './device-identity';
import { renderSfdiskScript } from './disk-layout';
import { FactoryRelease, loadFactoryRelease } from './factory-release';
import { ImageCommands, Undo } from './image-commands.adapter';
import { ENV_FLAG_OFFSET, parseInitialEnv, renderFactoryEnv, renderFwEnvConfig } from './uboot-env-image';
import { UIMAGE_HEADER_BYTES, uImageArch, uImageFitsArch } from './uimage-header';

export interface ImageRequest {
  /** the --out directory of `cowroot-release build` (or `sign`) */
  releaseDir: string;
  boardProfile: string;
  image: string;
  /** the release public key the devices pin (verifies the stream here, and goes on the image) */
  releaseKey: string;
  deviceId: string;
  credentialFile: string;
  mqttUrl: string;
  caFile?: string;
  /** the board u-boot's default env (`make u-boot-initial-env`), merged under the profile's variables */
  boardEnv?: string;
  poolMount?: string;
  signal?: AbortSignal;
}

export interface ImageResult {
  image: string;
  bmap: string;
  snapshotId: string;
  imageBytes: number;
  mappedBytes: number;
  seconds: number;
}

interface ImagePlan {
  profile: BoardProfile;
  release: FactoryRelease;
  identity: DeviceIdentity;
  releaseKeyPem: string;
  ca: string | null;
  boardEnv: Record<string, string>;
  mqttUrl: string;
  image: string;
  bmap: string;
  streamBytes: number;
}

const MiB = 1024 * 1024;
/** room btrfs needs besides the files: DUP metadata and system chunks, the global reserve (measured, 6.2) */
const POOL_OVERHEAD_BYTES = 128 * MiB;
const SCRIPT_NAME = 'boot.scr';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
  );
}

export interface BmapSizes {
  imageBytes: number;
  mappedBytes: number;
  blockSize: number;
  /** mapped block ranges, inclusive */
  ranges: Array<{ first: number; last: number }>;
}

/** What a bmap (bmaptool create's XML) says flashing writes: the image size and the mapped blocks. */
export function parseBmapSizes(xml: string): BmapSizes {
  const field = (name: string) => {
    const match = new RegExp(`<${name}>\\s*(\\d+)\\s*</${name}>`).exec(xml);
    if (!match) throw new Error(`bmap has no ${name}`);
    return Number(match[1]);
  };
  const blockSize = field('BlockSize');
  const ranges = [...xml.matchAll(/<Range[^>]*>\s*(\d+)(?:-(\d+))?\s*<\/Range>/g)].map((m) => ({
    first: Number(m[1]),
    last: Number(m[2] ?? m[1]),
  }));
  return { imageBytes: field('ImageSize'), mappedBytes: field('MappedBlocksCount') * blockSize, blockSize, ranges };
}

/**
 * `cowroot-release image` (docs/factory.md): a disk image of one device, ready for dd or bmaptool. All
 * checks that can refuse the image run before anything is written; the image is assembled in a temp file
 * next to the target and linked to its name only when complete (never over an existing file), with its
 * .bmap. Any failure, or SIGINT/SIGTERM, undoes every loop device, mount and temp file.
 */
export class FactoryImageWriter {
  constructor(private readonly log: (line: string) => void = () => undefined) {}

  async write(request: ImageRequest): Promise<ImageResult> {
    const started = Date.now();
    const commands = new ImageCommands(new DeviceCommandRunner(), request.signal);
    const plan = await this.preflight(request, commands);
    const undo = new Undo();
    const work = await mkdtemp(join(tmpdir(), 'cowroot-image-'));
    undo.push('work directory', () => rm(work, { recursive: true, force: true }));
    const temp = join(dirname(plan.image), `.${basename(plan.image)}.tmp-${randomBytes(4).toString('hex')}`);
    try {
      const handle = await open(temp, 'wx', 0o644);
      undo.push('temp image', () => rm(temp, { force: true }));
      await handle.truncate(plan.profile.diskBytes);
      await handle.close();
      await commands.run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', temp], {
        stdin: renderSfdiskScript(plan.profile),
      });
      this.log(`partition table (${plan.profile.table}): ${this.describeLayout(plan.profile)}`);
      await this.writeBootPartition(plan, temp, work, commands, undo);
      await this.writePool(plan, request, temp, work, commands, undo);
      await this.syncFile(temp);

      const tempBmap = `${temp}.bmap`;
      undo.push('temp bmap', () => rm(tempBmap, { force: true }));
      await commands.run('bmaptool', ['-q', 'create', '-o', tempBmap, temp]);
      const sizes = parseBmapSizes(await readFile(tempBmap, 'utf8'));
      await this.publish(temp, tempBmap, plan);
      await undo.undoAll(this.log);
      const seconds = (Date.now() - started) / 1000;
      this.log(
        `image ${plan.image}: ${(sizes.imageBytes / MiB).toFixed(0)} MiB, ${(sizes.mappedBytes / MiB).toFixed(1)} MiB mapped (${plan.bmap}), ${seconds.toFixed(1)} s`,
      );
      return {
        image: plan.image,
        bmap: plan.bmap,
        snapshotId: plan.release.snapshotId,
        imageBytes: sizes.imageBytes,
        mappedBytes: sizes.mappedBytes,
        seconds,
      };
    } catch (error) {
      await undo.undoAll(this.log);
      throw error;
    }
  }

  /** Every check that can refuse the image, before a byte is written. */
  private async preflight(request: ImageRequest, commands: ImageCommands): Promise<ImagePlan> {
    if (process.getuid?.() !== 0) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        'image must run as root (loop devices, mkfs.btrfs, btrfs receive); run it with sudo',
      );
    }
    const image = resolve(request.image);
    const bmap = `${image}.bmap`;
    for (const path of [image, bmap]) {
      if (await exists(path)) {
        throw new ReleaseError(
          ReleaseErrorCode.OutputExists,
          `${path} already exists; refusing to overwrite it (remove it or choose another --image)`,
        );
      }
    }
    if (
      !(await stat(dirname(image)).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    ) {
      throw new ReleaseError(ReleaseErrorCode.InvalidArgument, `directory ${dirname(image)} of --image does not exist`);
    }
    const profile = await loadBoardProfile(request.boardProfile);
    if (!(await exists(profile.bootScript))) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `boot script ${profile.bootScript} of board ${profile.name} does not exist`,
      );
    }
    // the pinned key must be an ed25519 public key before it verifies anything or goes on a device
    await SigningKeys.loadPublic(request.releaseKey);
    const releaseKeyPem = await readFile(resolve(request.releaseKey), 'utf8');
    const release = await loadFactoryRelease(request.releaseDir, request.releaseKey);
    const identity = await loadDeviceIdentity(request.deviceId, request.credentialFile);
    checkMqttUrl(request.mqttUrl);
    const ca = request.caFile ? await loadCaBundle(request.caFile) : null;
    let boardEnv: Record<string, string> = {};
    if (request.boardEnv) {
      try {
        boardEnv = parseInitialEnv(await readFile(resolve(request.boardEnv), 'utf8'));
      } catch (error) {
        throw new ReleaseError(
          ReleaseErrorCode.InvalidArgument,
          `board env ${resolve(request.boardEnv)} is not a u-boot-initial-env file: ${(error as Error).message}`,
        );
      }
    }
    const streamBytes =
      release.manifest.compression === 'zstd'
        ? await this.decompressedSize(release.stream, commands)
        : release.manifest.size;
    const need = Math.ceil(streamBytes * 1.1) + POOL_OVERHEAD_BYTES;
    if (profile.pool.size < need) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `the pool partition of board ${profile.name} (${profile.pool.size / MiB} MiB) is too small for release ${release.manifest.release.name}@${release.manifest.release.version} (${Math.ceil(streamBytes / MiB)} MiB of files): it needs at least ${Math.ceil(need / MiB)} MiB; enlarge disk.sizeMiB or the pool partition in the profile`,
      );
    }
    return {
      profile,
      release,
      identity,
      releaseKeyPem,
      ca,
      boardEnv,
      mqttUrl: request.mqttUrl,
      image,
      bmap,
      streamBytes,
    };
  }

  /** Bytes of the uncompressed send stream (`zstd -d < stream | wc -c`: counted, nothing kept). */
  private async decompressedSize(stream: string, commands: ImageCommands): Promise<number> {
    const output = await commands.run('wc', ['-c'], {
      stdin: { file: stream, through: { command: 'zstd', args: ['-d', '-c', '-q'] } },
    });
    return Number(output.trim());
  }

  private describeLayout(profile: BoardProfile): string {
    return profile.partitions.map((p) => `p${p.number} ${p.role} ${p.offset / MiB}+${p.size / MiB} MiB`).join(', ');
  }

  /** A loop device over one partition of the image (offset + size limit: no partition scan, no udev). */
  private async attach(temp: string, partition: PlacedPartition, commands: ImageCommands, undo: Undo): Promise<string> {
    const device = (
      await commands.run('losetup', [
        '--find',
        '--show',
        '--offset',
        String(partition.offset),
        '--sizelimit',
        String(partition.size),
        temp,
      ])
    ).trim();
    undo.push(`loop ${device}`, () => commands.run('losetup', ['-d', device]));
    return device;
  }

  private async writeBootPartition(
    plan: ImagePlan,
    temp: string,
    work: string,
    commands: ImageCommands,
    undo: Undo,
  ): Promise<void> {
    const { profile } = plan;
    const script = join(work, SCRIPT_NAME);
    await commands.run('mkimage', [
      '-A',
      profile.arch,
      '-O',
      'linux',
      '-T',
      'script',
      '-C',
      'none',
      '-n',
      'cowroot',
      '-d',
      profile.bootScript,
      script,
    ]);
    const copies = await this.envCopies(plan, work, commands);
    const device = await this.attach(temp, profile.boot, commands, undo);
    await commands.run('mkfs.vfat', ['-n', profile.boot.label ?? 'COWBOOT', device]);
    await commands.run('mcopy', ['-i', device, script, ...(profile.env.kind === 'fat' ? copies : []), '::/']);
    await undo.runNow(`loop ${device}`);
    if (profile.env.kind === 'raw') {
      const handle = await open(temp, 'r+');
      try {
        for (const [index, offset] of (profile.env.offsets as [number, number]).entries()) {
          await handle.write(await readFile(copies[index]), 0, profile.env.sizeBytes, offset);
        }
      } finally {
        await handle.close();
      }
    }
    this.log(
      `boot partition: ${SCRIPT_NAME} from ${profile.bootScript}; env (${profile.env.kind}, 2 copies of ${profile.env.sizeBytes} bytes) with cowroot_current=${plan.release.snapshotId}`,
    );
  }

  /**
   * Both env copies: mkenvimage -r (CRC + the redundant flag byte), the second with flag 0, so the first
   * copy (flag 1) is the active one for u-boot and libubootenv alike and the first saveenv writes the second.
   */
  private async envCopies(plan: ImagePlan, work: string, commands: ImageCommands): Promise<[string, string]> {
    const text = join(work, 'env.txt');
    await writeFile(text, renderFactoryEnv(plan.boardEnv, plan.profile.env.variables, plan.release.snapshotId));
    // on FAT, mcopy names each file after its source: the copies get the board's file names here
    const [first, second] = plan.profile.env.files ?? ['env.0', 'env.1'];
    await mkdir(join(work, 'env'));
    const copies: [string, string] = [join(work, 'env', first), join(work, 'env', second)];
    try {
      await commands.run('mkenvimage', ['-r', '-s', String(plan.profile.env.sizeBytes), '-o', copies[0], text]);
    } catch (error) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `the factory env does not fit in env.sizeBytes ${plan.profile.env.sizeBytes} of board ${plan.profile.name} (${(error as Error).message})`,
      );
    }
    const bytes = await readFile(copies[0]);
    bytes[ENV_FLAG_OFFSET] = 0;
    await writeFile(copies[1], bytes);
    return copies;
  }

  private async writePool(
    plan: ImagePlan,
    request: ImageRequest,
    temp: string,
    work: string,
    commands: ImageCommands,
    undo: Undo,
  ): Promise<void> {
    const { profile, release } = plan;
    const device = await this.attach(temp, profile.pool, commands, undo);
    await commands.run('mkfs.btrfs', ['-q', '-f', '-L', profile.pool.label ?? 'cowroot', device]);
    const mount = join(work, 'pool');
    await mkdir(mount);
    await commands.run('mount', ['-t', 'btrfs', '-o', 'subvolid=5', device, mount]);
    undo.push(`mount ${mount}`, () =>
      commands.run('umount', [mount]).catch(() => commands.run('umount', ['-l', mount])),
    );

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
          signal: request.signal,
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
    await this.checkKernelArch(store.snapshotPath(id), plan);
    // manufacturing made it (docs/device.md §2 origin table); the release and received_uuid stay
    const metadata = await store.readMetadata(id);
    await writeFileAtomic(
      store.metadataPath(id),
      `${JSON.stringify({ ...metadata, origin: SnapshotOrigin.Factory, parent: null }, null, 2)}\n`,
    );
    // what the initramfs makes at every boot anyway; here so the pool is complete before its first boot
    await btrfs.snapshot(store.snapshotPath(id), store.workspacePath, { readOnly: false });
    await this.writeDeviceConfig(plan, join(mount, POOL_CONFIG_DIR), request.poolMount ?? DEFAULT_POOL_MOUNT);
    await this.noteMissingHealthDirs(store.snapshotPath(id));
    await btrfs.syncFilesystem(mount);
    await undo.runNow(`mount ${mount}`);
    await undo.runNow(`loop ${device}`);
    this.log(
      `pool: snapshots/${id} received from ${basename(release.stream)} (received_uuid ${release.manifest.snapshotUuid}), meta/${id}.json, workspace, ${POOL_CONFIG_DIR}/ for device ${plan.identity.deviceId}`,
    );
  }

  /** The kernel uImage must be built for the board's arch (mkimage -A in `cowroot-release build --arch`). */
  private async checkKernelArch(snapshot: string, plan: ImagePlan): Promise<void> {
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
  private async writeDeviceConfig(plan: ImagePlan, dir: string, poolMount: string): Promise<void> {
    await mkdir(dir, { mode: 0o700 });
    const files: Array<[string, string, number]> = [
      [
        CONFIG_FILES.agent,
        renderAgentConfig({
          deviceId: plan.identity.deviceId,
          mqttUrl: plan.mqttUrl,
          hasCa: plan.ca !== null,
          poolMount,
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

  private async noteMissingHealthDirs(snapshot: string): Promise<void> {
    for (const dir of ['etc/cowroot/required.d', 'etc/cowroot/wanted.d']) {
      if (!(await exists(join(snapshot, dir)))) {
        this.log(
          `note: the release has no /${dir}; the agent refuses to start until the rootfs has it (docs/factory.md)`,
        );
      }
    }
  }

  private async syncFile(path: string): Promise<void> {
    const handle = await open(path, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** link(2) never replaces an existing name: the image and its bmap appear whole, or not at all. */
  private async publish(temp: string, tempBmap: string, plan: ImagePlan): Promise<void> {
    const refuse = (path: string) =>
      new ReleaseError(ReleaseErrorCode.OutputExists, `${path} appeared while the image was written; nothing replaced`);
    await link(temp, plan.image).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'EEXIST' ? refuse(plan.image) : error;
    });
    try {
      await link(tempBmap, plan.bmap);
    } catch (error) {
      await unlink(plan.image);
      throw (error as NodeJS.ErrnoException).code === 'EEXIST' ? refuse(plan.bmap) : error;
    }
    await Promise.all([unlink(temp), unlink(tempBmap)]);
  }
}
