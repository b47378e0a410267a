import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export async function sh(command: string, args: string[], options: { stdin?: string } = {}): Promise<string> {
  try {
    if (options.stdin !== undefined) {
      return await new Promise((resolve, reject) => {
        const child = execFile(command, args, { encoding: 'utf8' }, (error, stdout, stderr) =>
          error ? reject(Object.assign(error, { stderr })) : resolve(stdout),
        );
        child.stdin?.end(options.stdin);
      });
    }
    return (await execFileAsync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (error) {
    const failure = error as Error & { stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${failure.message} ${failure.stderr ?? ''}`);
  }
}

export interface ImagePartition {
  offset: number;
  size: number;
  type: string;
  bootable: boolean;
}

/** The partition table as `sfdisk -J` reads it from the image (what u-boot's `part` sees). */
export async function partitionTable(image: string): Promise<{ label: string; partitions: ImagePartition[] }> {
  const table = JSON.parse(await sh('sfdisk', ['-J', image])) as {
    partitiontable: {
      label: string;
      sectorsize?: number;
      partitions: { start: number; size: number; type: string; bootable?: boolean }[];
    };
  };
  const sector = table.partitiontable.sectorsize ?? 512;
  return {
    label: table.partitiontable.label,
    partitions: table.partitiontable.partitions.map((p) => ({
      offset: p.start * sector,
      size: p.size * sector,
      type: p.type,
      bootable: p.bootable === true,
    })),
  };
}

/** Loop device over one partition of `image`, read-only unless asked; the caller detaches it. */
export async function attachPartition(image: string, partition: ImagePartition, writable = false): Promise<string> {
  return (
    await sh('losetup', [
      '--find',
      '--show',
      ...(writable ? [] : ['--read-only']),
      '--offset',
      String(partition.offset),
      '--sizelimit',
      String(partition.size),
      image,
    ])
  ).trim();
}

/** Mounts a partition of the image, runs `fn`, and always unmounts and detaches. */
export async function withPartition<T>(
  image: string,
  partition: ImagePartition,
  mountPoint: string,
  options: string,
  fn: (mountPoint: string, device: string) => Promise<T>,
  writable = false,
): Promise<T> {
  await mkdir(mountPoint, { recursive: true });
  const device = await attachPartition(image, partition, writable);
  try {
    await sh('mount', ['-o', options, device, mountPoint]);
    try {
      return await fn(mountPoint, device);
    } finally {
      await sh('umount', [mountPoint]);
    }
  } finally {
    await sh('losetup', ['-d', device]);
  }
}

/** Loop devices whose backing file lies below `dir` (none may survive a build, failed or not). */
export async function loopDevicesUnder(dir: string): Promise<string[]> {
  const listing = await sh('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
  return listing
    .split('\n')
    .filter((line) => line.includes(dir))
    .map((line) => line.trim());
}

/** Mounts of the image writer's work directories (cowroot-image-*) or anything below `dir`. */
export async function mountsOf(dir: string): Promise<string[]> {
  const mounts = await readFile('/proc/mounts', 'utf8');
  return mounts
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((target) => target.includes('cowroot-image-') || target.startsWith(dir));
}

export async function fwPrintenv(config: string, path: string, lines: string[]): Promise<Record<string, string>> {
  await mkdir(join(path, '..'), { recursive: true });
  const { writeFile } = await import('node:fs/promises');
  await writeFile(config, `${lines.join('\n')}\n`);
  const env: Record<string, string> = {};
  for (const line of (await sh('fw_printenv', ['-c', config])).split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

/** A board profile as JSON, loose enough for tests to break it on purpose. */
export interface BoardProfileJson {
  name: string;
  arch: string;
  disk: { table: string; sizeMiB: number; firstPartitionMiB?: number };
  partitions: Array<{ role: string; type: string; sizeMiB?: number; label?: string }>;
  env: { variables: Record<string, string | null>; [key: string]: unknown };
  bootScript: string;
  [key: string]: unknown;
}
