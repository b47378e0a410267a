import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandRunner } from './command-runner';
import { renderSetenvScript } from './uboot-env.adapter';

export interface FileBackedEnvOptions {
  /** bytes of one env copy; must equal CONFIG_ENV_SIZE when u-boot reads the same files (default 16 KiB) */
  sizeBytes?: number;
  /** variables to start with */
  initial?: Record<string, string>;
  runner?: CommandRunner;
}

export interface FileBackedEnv {
  configPath: string;
  /** the two env copies, in fw_env.config order */
  copies: [string, string];
  sizeBytes: number;
}

/**
 * A redundant (two-copy) u-boot env in plain files, for tests and the virtual device: both copies are
 * made by `mkenvimage -r` (which adds the redundant-env flag byte after the CRC) and fw_env.config names
 * each file with offset 0 and the same size, the size given to mkenvimage -s.
 */
export async function createFileBackedEnv(dir: string, options: FileBackedEnvOptions = {}): Promise<FileBackedEnv> {
  const sizeBytes = options.sizeBytes ?? 0x4000;
  const runner = options.runner ?? new CommandRunner();
  await mkdir(dir, { recursive: true });
  const source = join(dir, 'initial-env.txt');
  // mkenvimage takes `name=value` lines, the same text as our fw_setenv script
  await writeFile(source, renderSetenvScript(options.initial ?? {}));
  const copies: [string, string] = [join(dir, 'uboot-env.0.bin'), join(dir, 'uboot-env.1.bin')];
  await runner.run('mkenvimage', ['-r', '-s', String(sizeBytes), '-o', copies[0], source]);
  await copyFile(copies[0], copies[1]);
  const hexSize = `0x${sizeBytes.toString(16)}`;
  const configPath = join(dir, 'fw_env.config');
  await writeFile(
    configPath,
    `# device/file\toffset\tenv size (cowroot file-backed redundant env)\n${copies[0]}\t0x0\t${hexSize}\n${copies[1]}\t0x0\t${hexSize}\n`,
  );
  return { configPath, copies, sizeBytes };
}
