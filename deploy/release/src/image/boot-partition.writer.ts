import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { ImageCommands } from './image-commands.adapter';
import { attachPartition, ImageJob, ImagePlan } from './image-plan';
import { ENV_FLAG_OFFSET, renderFactoryEnv } from './uboot-env-image';

const SCRIPT_NAME = 'boot.scr';

/**
 * The boot partition (FAT): boot.scr built from the profile's boot script, and the two env copies, on
 * the FAT for a FAT env or at the raw offsets of the disk (docs/factory.md "What is on the image").
 */
export async function writeBootPartition(job: ImageJob): Promise<void> {
  const { plan, temp, work, commands, undo } = job;
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
  const copies = await envCopies(plan, work, commands);
  const device = await attachPartition(job, profile.boot);
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
  job.log(
    `boot partition: ${SCRIPT_NAME} from ${profile.bootScript}; env (${profile.env.kind}, 2 copies of ${profile.env.sizeBytes} bytes) with cowroot_current=${plan.release.snapshotId}`,
  );
}

/**
 * Both env copies: mkenvimage -r (CRC + the redundant flag byte), the second with flag 0, so the first
 * copy (flag 1) is the active one for u-boot and libubootenv alike and the first saveenv writes the second.
 */
async function envCopies(plan: ImagePlan, work: string, commands: ImageCommands): Promise<[string, string]> {
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
