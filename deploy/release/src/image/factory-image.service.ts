import { randomBytes } from 'node:crypto';
import { link, mkdtemp, open, readFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { CommandRunner as DeviceCommandRunner } from '@cowroot/device';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { SigningKeys } from '../signing-keys';
import { DEFAULT_POOL_MOUNT } from './agent-config.renderer';
import { parseBmapSizes } from './bmap';
import { writeBootPartition } from './boot-partition.writer';
import { BoardProfile, loadBoardProfile } from './board-profile';
import { checkHttpUrl, checkMqttUrl, loadCaBundle, loadDeviceIdentity } from './device-identity';
import { renderSfdiskScript } from './disk-layout';
import { loadFactoryRelease } from './factory-release';
import { ImageCommands, Undo } from './image-commands.adapter';
import { ImageJob, ImagePlan, MiB } from './image-plan';
import { writePool } from './pool.writer';
import { parseInitialEnv } from './uboot-env-image';

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
  /** the fleet server's HTTP(S) origin: the only place the agent downloads artifacts from */
  httpUrl: string;
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

/**
 * Margin for what btrfs needs besides the files (DUP metadata and system chunks, the global reserve): a
 * conservative allowance, so a pool that passes this check is not refused by receive; ENOSPC is still mapped.
 */
const POOL_OVERHEAD_BYTES = 128 * MiB;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
  );
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
    const cleanup = new ImageCommands(new DeviceCommandRunner());
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
      const job: ImageJob = { plan, temp, work, commands, cleanup, undo, signal: request.signal, log: this.log };
      await writeBootPartition(job);
      await writePool(job);
      await this.syncFile(temp);

      const tempBmap = `${temp}.bmap`;
      undo.push('temp bmap', () => rm(tempBmap, { force: true }));
      await commands.run('bmaptool', ['-q', 'create', '-o', tempBmap, temp]);
      const sizes = parseBmapSizes(await readFile(tempBmap, 'utf8'));
      // an interrupt that came while a step without a running command was busy ends here at the latest
      if (request.signal?.aborted) throw new Error('interrupted');
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
      if (request.signal?.aborted) {
        throw new ReleaseError(
          ReleaseErrorCode.CommandFailed,
          `interrupted: ${plan.image} was not written, and every loop device, mount and temp file is gone again`,
        );
      }
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
    checkHttpUrl(request.httpUrl);
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
      httpUrl: request.httpUrl,
      poolMount: request.poolMount ?? DEFAULT_POOL_MOUNT,
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
