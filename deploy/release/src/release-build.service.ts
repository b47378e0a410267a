import { CommandRunner, type DeltaFormat } from '@cowroot/device';
import {
  ArtifactKind,
  RELEASE_INDEX_FILE,
  RELEASE_INDEX_FORMAT,
  ReleaseIndex,
  ReleaseIndexArtifact,
  signManifest,
} from '@cowroot/protocol';
import { KeyObject } from 'node:crypto';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ArtifactWriter } from './artifact-writer.service';
import { buildManifestBytes, ManifestSecurity } from './artifact-manifest.builder';
import { BtrfsPool, SubvolumeInfo } from './btrfs-pool.service';
import {
  Arch,
  BOOT_INITRD_IMAGE,
  BOOT_KERNEL_IMAGE,
  BootFiles,
  KernelImages,
  kernelImageArgs,
} from './kernel-images.service';
import { ReleaseError, ReleaseErrorCode } from './release-error';
import { ReleaseRefArg } from './release-ref';
import { SigningKeys } from './signing-keys';
import { SubvolumeLink, isSnapshotAncestor } from './subvolume-ancestry';
import { DeltaWriter } from './delta/delta-writer.service';

export interface BuildRequest {
  rootfs: string;
  pool: string;
  release: ReleaseRefArg;
  description?: string;
  /** downgrade protection fields of every manifest (docs/protocol.md §8) */
  security?: ManifestSecurity;
  keyPath: string;
  outDir: string;
  /** start the release as a writable snapshot of this one, so unchanged files share extents */
  base?: ReleaseRefArg;
  /** write an incremental stream against each of these ancestors */
  deltaFrom: ReleaseRefArg[];
  arch: Arch;
  kernel?: string;
  initrd?: string;
  loadAddress?: string;
  entryPoint?: string;
  zstdLevel?: number;
  /** also write a delta artifact (binary patches, docs/release-tool.md "Delta artifacts") per --delta-from */
  binaryDelta?: boolean;
  /** largest patch window (log2) a device must allow; larger files go as plain data */
  deltaWindowLog?: number;
  /** the delta format to write (--delta-format), named in the manifest; the server offers it only to devices that read it */
  deltaFormat?: DeltaFormat;
  /** releases the fleet holds (--delta-from-fleet): like --delta-from, but one not in the pool or not an ancestor is skipped */
  fleetBases?: ReleaseRefArg[];
}

export interface BuildResult {
  snapshotPath: string;
  indexPath: string;
  index: ReleaseIndex;
}

interface BuildPlan {
  key: KeyObject;
  rootfs: string;
  bootFiles: BootFiles;
  pool: BtrfsPool;
  snapshotPath: string;
  base: SubvolumeInfo | null;
  artifacts: PlannedArtifact[];
  outDir: string;
}

interface PlannedArtifact {
  parent: { ref: ReleaseRefArg; info: SubvolumeInfo } | null;
  file: string;
  /** a delta artifact rather than the plain stream */
  delta?: boolean;
}

/** The manifest's file pattern; checked before any work so a long name fails early. */
const ARTIFACT_FILE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Creates a file that must not exist yet ('wx'); once created it is listed for removal on failure. */
async function writeNewFile(path: string, data: string | Buffer, written: string[]): Promise<void> {
  const handle = await open(path, 'wx');
  written.push(path);
  try {
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

/**
 * The stream identity of a subvolume: `btrfs send` announces the received_uuid when the subvolume has one
 * (it was itself received), else its uuid. That is the value a device stores as received_uuid.
 */
function streamUuid(info: SubvolumeInfo): string {
  return info.receivedUuid ?? info.uuid;
}

/**
 * Builds one release: rootfs → release subvolume with u-boot images in /boot → read-only → full and
 * incremental zstd send streams, each with a signed manifest, plus release.json. Every check that can fail
 * runs before the pool is touched; a failure after that removes the half-built subvolume and outputs.
 */
export class ReleaseBuildService {
  private readonly kernelImages: KernelImages;

  constructor(
    private readonly runner: CommandRunner,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.kernelImages = new KernelImages(runner);
  }

  async build(request: BuildRequest): Promise<BuildResult> {
    const plan = await this.preflight(request);
    const { pool, snapshotPath, outDir } = plan;
    const written: string[] = [];
    let created = false;
    try {
      if (plan.base && request.base) {
        await pool.snapshotWritable(plan.base.path, snapshotPath);
        this.log(`created ${snapshotPath} as a snapshot of ${request.base}`);
      } else {
        await pool.createSubvolume(snapshotPath);
        this.log(`created ${snapshotPath}`);
      }
      created = true;
      await this.syncRootfs(plan.rootfs, snapshotPath);
      const images = await this.kernelImages.install(snapshotPath, plan.bootFiles, {
        arch: request.arch,
        loadAddress: request.loadAddress,
        entryPoint: request.entryPoint,
      });
      const unchanged = (changed: boolean) => (changed ? '' : ' (unchanged)');
      this.log(
        `boot images: ${BOOT_KERNEL_IMAGE} from ${plan.bootFiles.kernel}${unchanged(images.kernelChanged)}, ` +
          `${BOOT_INITRD_IMAGE} from ${plan.bootFiles.initrd}${unchanged(images.initrdChanged)}`,
      );
      await pool.makeReadOnly(snapshotPath);
      const snapshot = await pool.show(snapshotPath);
      this.log(`read-only snapshot ${snapshotPath} uuid ${snapshot.uuid}`);

      const createdAt = new Date();
      const writer = new ArtifactWriter(this.runner, request.zstdLevel);
      const artifacts: ReleaseIndexArtifact[] = [];
      for (const item of plan.artifacts) {
        // the writer removes its own partial file; once written, the artifact is ours to remove
        const stream =
          item.delta && item.parent
            ? await new DeltaWriter(this.runner, {
                zstdLevel: request.zstdLevel,
                maxWindowLog: request.deltaWindowLog,
                format: request.deltaFormat,
              }).write({
                send: pool.sendCommand(snapshotPath, item.parent.info.path),
                parentRoot: item.parent.info.path,
                newRoot: snapshotPath,
                path: join(outDir, item.file),
              })
            : await writer.write(pool.sendCommand(snapshotPath, item.parent?.info.path), join(outDir, item.file));
        written.push(stream.path);
        artifacts.push(
          await this.writeManifest(outDir, item, stream, { request, snapshot, createdAt, key: plan.key }, written),
        );
        this.log(
          `wrote ${item.file} (${stream.size} bytes${item.parent ? `, ${item.delta ? 'delta' : 'incremental'} from ${item.parent.ref}` : ''})`,
        );
      }
      const index: ReleaseIndex = {
        format: RELEASE_INDEX_FORMAT,
        name: request.release.name,
        version: request.release.version,
        description: request.description ?? null,
        snapshotUuid: streamUuid(snapshot),
        createdAt: createdAt.toISOString(),
        artifacts,
      };
      const indexPath = join(outDir, RELEASE_INDEX_FILE);
      await writeNewFile(indexPath, `${JSON.stringify(index, null, 2)}\n`, written);
      return { snapshotPath, indexPath, index };
    } catch (error) {
      await Promise.all(written.map((path) => rm(path, { force: true })));
      if (created) await pool.deleteSubvolume(snapshotPath).catch(() => undefined);
      throw error;
    }
  }

  /** Every check that can refuse the build, before anything is created. */
  private async preflight(request: BuildRequest): Promise<BuildPlan> {
    if (process.getuid?.() !== 0) {
      // btrfs send, subvolume list and rsync of a rootfs's owners all need it; say so before they fail
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        'build must run as root (btrfs send and subvolume list need CAP_SYS_ADMIN); run it with sudo',
      );
    }
    const key = await SigningKeys.loadPrivate(request.keyPath);
    kernelImageArgs(request.arch, request.loadAddress, request.entryPoint);
    const rootfs = await this.requireDirectory(request.rootfs);
    const bootFiles = await this.kernelImages.locate(rootfs, { kernel: request.kernel, initrd: request.initrd });
    const pool = await BtrfsPool.open(this.runner, request.pool);
    const snapshotPath = pool.releasePath(request.release);
    if (await pool.exists(snapshotPath)) {
      const leftover = !(await pool.show(snapshotPath)).readOnly;
      throw new ReleaseError(
        ReleaseErrorCode.ReleaseExists,
        leftover
          ? `release ${request.release} exists at ${snapshotPath} but is writable, left by an interrupted build; delete it (btrfs subvolume delete ${snapshotPath}) and build again`
          : `release ${request.release} already exists at ${snapshotPath}; choose a new --version (or delete it: btrfs subvolume delete ${snapshotPath})`,
      );
    }
    const base = request.base ? await pool.release(request.base) : null;
    const artifacts = await this.planArtifacts(pool, request, base);
    const outDir = resolve(request.outDir);
    await mkdir(outDir, { recursive: true });
    await this.requireFreeOutputs(outDir, artifacts);
    return { key, rootfs, bootFiles, pool, snapshotPath, base, artifacts, outDir };
  }

  private async writeManifest(
    outDir: string,
    item: PlannedArtifact,
    stream: { size: number; sha256: string; plain?: { size: number; sha256: string }; format?: DeltaFormat },
    context: { request: BuildRequest; snapshot: SubvolumeInfo; createdAt: Date; key: KeyObject },
    written: string[],
  ): Promise<ReleaseIndexArtifact> {
    const manifestFile = `${item.file}.manifest.json`;
    const signatureFile = `${item.file}.manifest.sig`;
    const bytes = buildManifestBytes({
      release: context.request.release,
      file: item.file,
      size: stream.size,
      sha256: stream.sha256,
      snapshotUuid: streamUuid(context.snapshot),
      parent: item.parent ? { release: item.parent.ref, snapshotUuid: streamUuid(item.parent.info) } : null,
      createdAt: context.createdAt,
      description: context.request.description,
      security: context.request.security,
      reconstructs: item.delta ? stream.plain : undefined,
      deltaFormat: item.delta ? stream.format : undefined,
    });
    await writeNewFile(join(outDir, manifestFile), bytes, written);
    await writeNewFile(join(outDir, signatureFile), `${signManifest(bytes, context.key)}\n`, written);
    return {
      kind: item.delta ? ArtifactKind.Delta : item.parent ? ArtifactKind.Incremental : ArtifactKind.Full,
      file: item.file,
      manifest: manifestFile,
      signature: signatureFile,
      size: stream.size,
      sha256: stream.sha256,
      parent: item.parent ? { name: item.parent.ref.name, version: item.parent.ref.version } : null,
    };
  }

  /** The full stream plus one incremental per --delta-from, each parent proven an ancestor. */
  private async planArtifacts(
    pool: BtrfsPool,
    request: BuildRequest,
    base: SubvolumeInfo | null,
  ): Promise<PlannedArtifact[]> {
    const stem = request.release.fileStem;
    const plan: PlannedArtifact[] = [{ parent: null, file: `${stem}-full.btrfs.zst` }];
    const links = request.deltaFrom.length + (request.fleetBases?.length ?? 0) > 0 && base ? await pool.links() : [];
    const seen = new Set<string>();
    const fleet = new Set((request.fleetBases ?? []).map(String));
    for (const ref of [...request.deltaFrom, ...(request.fleetBases ?? [])]) {
      if (seen.has(ref.toString())) continue;
      seen.add(ref.toString());
      if (fleet.has(ref.toString()) && !(await this.usableFleetBase(pool, ref, request, base, links))) continue;
      const info = await pool.release(ref);
      const isBase = request.base?.equals(ref) ?? false;
      const isAncestor = base !== null && (isBase || isSnapshotAncestor(info.uuid, base, links));
      if (!isAncestor) {
        throw new ReleaseError(
          ReleaseErrorCode.NotAncestor,
          `${ref} is not an ancestor of ${request.release}: build with --base ${ref} (or a release descended from it), or drop --delta-from ${ref}`,
        );
      }
      const parentStem = ref.name === request.release.name ? ref.fileStem.slice(ref.name.length + 1) : ref.fileStem;
      plan.push({ parent: { ref, info }, file: `${stem}-from-${parentStem}.btrfs.zst` });
      if (request.binaryDelta)
        plan.push({ parent: { ref, info }, file: `${stem}-from-${parentStem}.delta.zst`, delta: true });
    }
    for (const item of plan) {
      if (!ARTIFACT_FILE_PATTERN.test(`${item.file}`)) {
        throw new ReleaseError(
          ReleaseErrorCode.InvalidArgument,
          `artifact name ${item.file} is longer than 128 characters; use a shorter release name or version`,
        );
      }
    }
    return plan;
  }

  /** A fleet base gets artifacts only when the pool still has it and it is an ancestor; else say why and skip. */
  private async usableFleetBase(
    pool: BtrfsPool,
    ref: ReleaseRefArg,
    request: BuildRequest,
    base: SubvolumeInfo | null,
    links: SubvolumeLink[],
  ): Promise<boolean> {
    const info = await pool.release(ref).catch(() => null);
    const ancestor =
      info !== null && base !== null && (request.base?.equals(ref) || isSnapshotAncestor(info.uuid, base, links));
    this.log(
      ancestor
        ? `delta from ${ref}: held by the fleet`
        : `skipping fleet base ${ref}: ${info ? 'not an ancestor of this release' : 'not in the pool'}`,
    );
    return ancestor;
  }

  private async requireFreeOutputs(outDir: string, plan: PlannedArtifact[]): Promise<void> {
    const names = [
      RELEASE_INDEX_FILE,
      ...plan.flatMap((item) => [item.file, `${item.file}.manifest.json`, `${item.file}.manifest.sig`]),
    ];
    for (const name of names) {
      const path = join(outDir, name);
      if (
        await stat(path).then(
          () => true,
          () => false,
        )
      ) {
        throw new ReleaseError(
          ReleaseErrorCode.OutputExists,
          `${path} already exists; use an empty --out directory for each release`,
        );
      }
    }
  }

  private async requireDirectory(path: string): Promise<string> {
    const absolute = resolve(path);
    const isDirectory = await stat(absolute).then(
      (info) => info.isDirectory(),
      () => false,
    );
    if (!isDirectory) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `rootfs ${absolute} is not a directory; pass --rootfs <directory>`,
      );
    }
    return absolute;
  }

  /**
   * Makes the subvolume's content equal to the rootfs. In place and by block (--inplace --no-whole-file)
   * so an unchanged file keeps the base release's extents and a changed one rewrites only what changed;
   * --checksum because reproducible builds give different files the same size and mtime;
   * --one-file-system so a /proc or /dev bind-mounted into a chroot build is not copied. The u-boot
   * images are excluded (and so kept): install() replaces them only when their content changes.
   */
  private async syncRootfs(rootfs: string, target: string): Promise<void> {
    await this.runner.run('rsync', [
      '-aHAX',
      '--numeric-ids',
      '--one-file-system',
      '--delete',
      '--inplace',
      '--no-whole-file',
      '--checksum',
      `--exclude=/boot/${BOOT_KERNEL_IMAGE}`,
      `--exclude=/boot/${BOOT_INITRD_IMAGE}`,
      `${rootfs}/`,
      `${target}/`,
    ]);
    this.log(`synced ${rootfs} into ${target}`);
  }
}
