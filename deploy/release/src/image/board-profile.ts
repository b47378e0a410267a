import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { plainToInstance, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateNested,
  validateSync,
} from 'class-validator';
import { describeValidationErrors } from '@cowroot/protocol';
import { ARCHES, Arch } from '../kernel-images.service';
import { ReleaseError, ReleaseErrorCode } from '../release-error';

/** docs/factory.md §"Board profiles": the format every profile file names. */
export const BOARD_PROFILE_FORMAT = 'cowroot-board/1';

export type PartitionRole = 'boot' | 'pool' | 'raw';

export class PartitionSpec {
  /** boot: FAT with boot.scr (and the env files of a FAT env); pool: the btrfs pool; raw: left empty */
  @IsIn(['boot', 'pool', 'raw'])
  role!: PartitionRole;

  /** MiB; omitted on the last partition = up to the end of the disk */
  @IsOptional()
  @IsInt()
  @Min(1)
  sizeMiB?: number;

  /** MBR type byte (hex, "c" FAT32 LBA, "83" Linux) or a GPT type GUID, as sfdisk takes it */
  @IsString()
  @Matches(/^([0-9a-fA-F]{1,2}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/, {
    message: 'type must be an MBR type byte in hex (c, 83) or a GPT type GUID',
  })
  type!: string;

  /** filesystem label (boot: at most 11 characters, FAT's limit) */
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,16}$/, { message: 'label must be 1-16 letters, digits, _ or -' })
  label?: string;
}

export class DiskSpec {
  @IsIn(['dos', 'gpt'])
  table!: 'dos' | 'gpt';

  /** the whole image: the smallest storage the board ships with */
  @IsInt()
  @Min(8)
  @Max(1024 * 1024)
  sizeMiB!: number;

  /** where the first partition starts; room for the partition table and raw env copies before it */
  @IsInt()
  @Min(1)
  firstPartitionMiB = 1;
}

export class EnvSpec {
  /** where u-boot keeps the env: files on the FAT boot partition, or two raw offsets on the disk */
  @IsIn(['fat', 'raw'])
  kind!: 'fat' | 'raw';

  /** CONFIG_ENV_SIZE: both copies have this size (mkenvimage -s, fw_env.config) */
  @IsInt()
  @Min(0x400)
  @Max(0x100000)
  sizeBytes!: number;

  /** fat: CONFIG_ENV_FAT_FILE and CONFIG_ENV_FAT_FILE_REDUND */
  @IsOptional()
  @IsArray()
  @ArrayMinSize(2)
  @ArrayMaxSize(2)
  @Matches(/^[A-Za-z0-9._-]{1,64}$/, { each: true, message: 'files must be plain file names' })
  files?: [string, string];

  /** fat: where the running system mounts the boot partition (fw_env.config names the files there) */
  @IsOptional()
  @Matches(/^\/[A-Za-z0-9._/-]*$/, { message: 'linuxMountPoint must be an absolute path' })
  linuxMountPoint?: string;

  /** raw: CONFIG_ENV_OFFSET and CONFIG_ENV_OFFSET_REDUND, bytes from the start of the disk */
  @IsOptional()
  @IsArray()
  @ArrayMinSize(2)
  @ArrayMaxSize(2)
  @IsInt({ each: true })
  @Min(0, { each: true })
  offsets?: [number, number];

  /** raw: the disk as the running system names it (fw_env.config), e.g. /dev/mmcblk0 */
  @IsOptional()
  @Matches(/^\/dev\/[A-Za-z0-9._/-]+$/, { message: 'linuxDevice must be a /dev path' })
  linuxDevice?: string;

  /**
   * The board's cowroot settings (uboot/README.md "Env layout"): bootcmd, cowroot_disk, cowroot_bootargs,
   * cowroot_boot... Written over the board's default env (`--board-env`); null removes a default.
   */
  @IsObject()
  variables!: Record<string, string | null>;
}

export class BoardProfileFile {
  @IsIn([BOARD_PROFILE_FORMAT])
  format!: string;

  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: 'name must be letters, digits, . _ - (at most 64)' })
  name!: string;

  @IsOptional()
  @IsString()
  description?: string;

  /** the architecture of the kernel uImage the board's u-boot boots (mkimage -A) */
  @IsIn(ARCHES)
  arch!: Arch;

  @ValidateNested()
  @Type(() => DiskSpec)
  disk!: DiskSpec;

  @IsArray()
  @ArrayMinSize(2)
  @ArrayMaxSize(8)
  @ValidateNested({ each: true })
  @Type(() => PartitionSpec)
  partitions!: PartitionSpec[];

  @ValidateNested()
  @Type(() => EnvSpec)
  env!: EnvSpec;

  /** u-boot hush source of the boot script, relative to the profile file (built into boot.scr) */
  @IsString()
  bootScript!: string;
}

/** A partition with its place on the disk, in bytes. */
export interface PlacedPartition extends PartitionSpec {
  /** 1-based, as u-boot (`virtio 0:2`) and sfdisk count */
  number: number;
  offset: number;
  size: number;
}

/** A validated profile with its partitions placed and its paths resolved. */
export interface BoardProfile {
  name: string;
  description: string | null;
  arch: Arch;
  path: string;
  table: 'dos' | 'gpt';
  diskBytes: number;
  partitions: PlacedPartition[];
  boot: PlacedPartition;
  pool: PlacedPartition;
  env: EnvSpec;
  bootScript: string;
}

const MiB = 1024 * 1024;
/** GPT keeps a backup header and table in the last 33 sectors */
const GPT_TAIL = 33 * 512;
const ENV_NAME = /^[A-Za-z0-9_.:-]+$/;

/** Places the partitions one after another from firstPartitionMiB; lists every layout problem. */
export function placePartitions(file: BoardProfileFile, problems: string[]): PlacedPartition[] {
  const diskBytes = file.disk.sizeMiB * MiB;
  const end = file.disk.table === 'gpt' ? diskBytes - GPT_TAIL : diskBytes;
  let offset = file.disk.firstPartitionMiB * MiB;
  const placed: PlacedPartition[] = [];
  file.partitions.forEach((spec, index) => {
    const last = index === file.partitions.length - 1;
    if (spec.sizeMiB === undefined && !last)
      problems.push(`partitions[${index}]: only the last partition may omit sizeMiB`);
    // the rest of the disk, MiB-aligned (sfdisk aligns starts; a MiB-multiple size keeps the next one aligned)
    const size = spec.sizeMiB !== undefined ? spec.sizeMiB * MiB : Math.floor((end - offset) / MiB) * MiB;
    if (size <= 0 || offset + size > end) {
      problems.push(
        `partitions[${index}] (${spec.role}) ends at ${Math.ceil((offset + Math.max(size, 0)) / MiB)} MiB, past the ${file.disk.sizeMiB} MiB disk`,
      );
    }
    placed.push({ ...spec, number: index + 1, offset, size });
    offset += Math.max(size, 0);
  });
  for (const role of ['boot', 'pool'] as const) {
    const count = placed.filter((p) => p.role === role).length;
    if (count !== 1) problems.push(`partitions: exactly one ${role} partition is needed (found ${count})`);
  }
  const boot = placed.find((p) => p.role === 'boot');
  if (boot?.label && boot.label.length > 11) problems.push('partitions: a FAT label has at most 11 characters');
  return placed;
}

function checkEnv(file: BoardProfileFile, placed: PlacedPartition[], problems: string[]): void {
  const env = file.env;
  if (env.kind === 'fat') {
    if (!env.files) problems.push('env.files: a FAT env needs its two file names (CONFIG_ENV_FAT_FILE, _REDUND)');
    else if (env.files[0] === env.files[1]) problems.push('env.files: the two copies need different names');
    if (!env.linuxMountPoint) problems.push('env.linuxMountPoint: where Linux mounts the boot partition is needed');
    if (env.offsets || env.linuxDevice) problems.push('env: offsets/linuxDevice are for kind "raw"');
  } else {
    if (!env.offsets) problems.push('env.offsets: a raw env needs its two offsets (CONFIG_ENV_OFFSET, _REDUND)');
    if (!env.linuxDevice) problems.push('env.linuxDevice: the disk as Linux names it is needed (e.g. /dev/mmcblk0)');
    if (env.files || env.linuxMountPoint) problems.push('env: files/linuxMountPoint are for kind "fat"');
    // both copies must sit clear of the partition table (first MiB's first 34 sectors) and every partition
    const taken = [
      { what: 'the partition table', offset: 0, size: file.disk.table === 'gpt' ? 34 * 512 : 512 },
      ...placed.map((p) => ({ what: `partition ${p.number}`, offset: p.offset, size: p.size })),
    ];
    (env.offsets ?? []).forEach((offset, index) => {
      const clash = taken.find((t) => offset < t.offset + t.size && t.offset < offset + env.sizeBytes);
      if (clash) problems.push(`env.offsets[${index}]: 0x${offset.toString(16)} overlaps ${clash.what}`);
      if (offset % 512 !== 0) problems.push(`env.offsets[${index}]: must be a multiple of 512`);
    });
    const [a, b] = env.offsets ?? [0, 0];
    if (env.offsets && Math.abs(a - b) < env.sizeBytes) problems.push('env.offsets: the two copies overlap');
  }
  for (const [name, value] of Object.entries(env.variables ?? {})) {
    if (!ENV_NAME.test(name)) problems.push(`env.variables: invalid variable name ${JSON.stringify(name)}`);
    if (value !== null && (typeof value !== 'string' || /[\n\r\0]/.test(value))) {
      problems.push(`env.variables.${name}: must be a one-line string or null`);
    }
  }
  for (const required of ['cowroot_disk', 'cowroot_bootargs', 'bootcmd']) {
    if (typeof env.variables?.[required] !== 'string') {
      problems.push(`env.variables.${required}: required (uboot/README.md "Env layout")`);
    }
  }
  if (env.variables && 'cowroot_current' in env.variables) {
    problems.push('env.variables.cowroot_current: set by the image (the factory snapshot), not the profile');
  }
}

/** Validates a parsed profile; throws one line listing every problem. */
export function parseBoardProfile(plain: unknown, path: string): BoardProfile {
  const fail = (problems: string[]): never => {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `board profile ${path} is invalid: ${problems.join('; ')}`,
    );
  };
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) fail(['it must be a JSON object']);
  const file = plainToInstance(BoardProfileFile, plain, { exposeDefaultValues: true });
  const problems = describeValidationErrors(validateSync(file, { whitelist: true, forbidNonWhitelisted: true }));
  if (problems.length > 0) fail(problems);
  const placed = placePartitions(file, problems);
  checkEnv(file, placed, problems);
  if (problems.length > 0) fail(problems);
  return {
    name: file.name,
    description: file.description ?? null,
    arch: file.arch,
    path,
    table: file.disk.table,
    diskBytes: file.disk.sizeMiB * MiB,
    partitions: placed,
    boot: placed.find((p) => p.role === 'boot') as PlacedPartition,
    pool: placed.find((p) => p.role === 'pool') as PlacedPartition,
    env: file.env,
    bootScript: isAbsolute(file.bootScript) ? file.bootScript : resolve(dirname(path), file.bootScript),
  };
}

export async function loadBoardProfile(path: string): Promise<BoardProfile> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `board profile ${absolute} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  let plain: unknown;
  try {
    plain = JSON.parse(text);
  } catch (error) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `board profile ${absolute} is not JSON (${(error as Error).message})`,
    );
  }
  return parseBoardProfile(plain, absolute);
}
