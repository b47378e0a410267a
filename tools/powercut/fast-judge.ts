import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandRunner, ENV, bootloaderDecision, readSwitchEnv } from '@cowroot/device';
import {
  SUPERBLOCK_OFFSETS,
  SUPERBLOCK_SIZE,
  checkLegacyImage,
  checkSuperblock,
  chooseEnv,
  parseEnvCopy,
  rebuildSuperblock,
  repairedPrimary,
  ubootSuperblock,
  type EnvCopy,
  type SuperblockStatus,
} from './uboot-view';
import { superblockFromSectorZero } from './sector-zero-superblock';

const runner = new CommandRunner();
const run = async (command: string, args: string[]): Promise<string> => (await runner.run(command, args)).stdout;

export interface DiskLayout {
  fat: { offset: number; size: number };
  pool: { offset: number; size: number };
}

export interface JudgeContext {
  layout: DiskLayout;
  /** boot.scr as the base disk holds it: the FAT must still give u-boot exactly these bytes */
  bootScript: Buffer;
  /** snapshots confirmed before the flow began (current, previous, a confirmed trial): none may be lost */
  confirmedBefore: string[];
  /** the u-boot build reads a backup superblock when the primary is invalid (uboot/patches/0001-…) */
  ubootBackupSuperblock: boolean;
  /** no copy valid: it rebuilds one from the sectors of two torn copies (uboot/patches/0002-…) */
  ubootRebuildSuperblock: boolean;
  /** no mix of the sectors checks out: a copy's sector 0 whose chunk root verifies (uboot/patches/0003-…) */
  ubootSectorZeroSuperblock: boolean;
  scratchDir: string;
}

export interface Verdict {
  ok: boolean;
  /** worth a real boot: the fast judge found a failure */
  suspicious: boolean;
  /** the primary superblock was invalid: judged on the backup copy put in its place, as the device does */
  repairedSuperblock: boolean;
  /**
   * no copy was valid: judged on the superblock rebuilt from two torn copies, as the patched u-boot writes
   * it: from a mix of their sectors (0002), or from one copy's sector 0 and its own sectors (0003)
   */
  rebuiltSuperblock: { from: number[]; generation: number; how: 'sectors' | 'sector 0' } | null;
  reasons: string[];
  envCopies: { name: string; valid: boolean; flag: number; protocol: Record<string, string>; why?: string }[];
  /** the snapshot boot.scr will boot (after its fallbacks), null if none */
  snapshot: string | null;
  trial: boolean;
  superblocks: SuperblockStatus[];
}

function protocolVars(vars: Record<string, string>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of Object.values(ENV)) if (vars[name]) picked[name] = vars[name];
  return picked;
}

async function readRange(handle: Awaited<ReturnType<typeof open>>, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, offset);
  return buffer.subarray(0, bytesRead);
}

/** One file off the FAT partition with mtools (a FAT a power cut left unreadable gives null). */
async function fatFile(image: string, layout: DiskLayout, name: string, dir: string): Promise<Buffer | null> {
  const target = join(dir, name);
  await rm(target, { force: true });
  try {
    await run('mcopy', ['-n', '-i', `${image}@@${layout.fat.offset}`, `::/${name}`, target]);
    return await readFile(target);
  } catch {
    return null;
  }
}

/**
 * The fast judge of one crash state (docs/boot-safety.md): the env as u-boot reads it, boot.cmd's
 * decision (bootloaderDecision, then the script's current/previous fallbacks), and on the pool mounted
 * read-only without log replay (u-boot never replays the log tree): the snapshot booted exists, is
 * read-only, and its uImage/uInitrd pass `iminfo`; no snapshot confirmed before the flow is gone.
 */
export async function judgeState(image: string, context: JudgeContext): Promise<Verdict> {
  const { layout } = context;
  const reasons: string[] = [];
  const dir = context.scratchDir;
  await mkdir(dir, { recursive: true });
  const copies: EnvCopy[] = [];
  for (const name of ['uboot.env', 'uboot-redund.env'])
    copies.push(parseEnvCopy(name, await fatFile(image, layout, name, dir)));
  const script = await fatFile(image, layout, 'boot.scr', dir);
  if (!script || !script.equals(context.bootScript)) reasons.push('boot.scr is not intact on the FAT partition');
  const chosen = chooseEnv(copies[0], copies[1]);
  if (!chosen) reasons.push('both env copies are invalid: u-boot falls back to its default env (no cowroot_disk)');

  const handle = await open(image, 'r+');
  const superblocks: SuperblockStatus[] = [];
  const superBytes = new Map<number, Buffer>();
  try {
    for (const offset of SUPERBLOCK_OFFSETS) {
      if (offset + SUPERBLOCK_SIZE > layout.pool.size) continue;
      const bytes = await readRange(handle, layout.pool.offset + offset, SUPERBLOCK_SIZE);
      superBytes.set(offset, bytes);
      superblocks.push(checkSuperblock(bytes, offset));
    }
  } catch (error) {
    await handle.close();
    throw error;
  }
  const primaryValid = superblocks[0]?.valid === true;
  const ubootSuper = ubootSuperblock(superblocks, context.ubootBackupSuperblock);
  // u-boot's rebuild reads the first two copies (the third lies beyond any device this small)
  const firstTwo = [...superBytes].slice(0, 2).map(([offset, bytes]) => ({ offset, bytes }));
  let rebuilt: { from: number[]; generation: number; primary: Buffer; how: 'sectors' | 'sector 0' } | null = null;
  if (!ubootSuper && context.ubootRebuildSuperblock) {
    const mixed = rebuildSuperblock(firstTwo);
    if (mixed) rebuilt = { ...mixed, how: 'sectors' };
  }
  if (!ubootSuper && !rebuilt && context.ubootSectorZeroSuperblock) {
    const read = (offset: number, length: number): Promise<Buffer> =>
      readRange(handle, layout.pool.offset + offset, length);
    const fromSectorZero = await superblockFromSectorZero(firstTwo, read).catch(async (error: unknown) => {
      await handle.close();
      throw error;
    });
    if (fromSectorZero) rebuilt = { ...fromSectorZero, how: 'sector 0' };
  }
  if (!ubootSuper && !rebuilt) {
    reasons.push(
      `u-boot finds no valid btrfs superblock (${superblocks.map((s) => s.why ?? 'ok').join(', ')})${context.ubootRebuildSuperblock ? ' and rebuilds none from their sectors' : ''}${context.ubootSectorZeroSuperblock ? ' nor from a sector 0 whose chunk root verifies' : ''}`,
    );
  }

  const verdict: Verdict = {
    ok: false,
    suspicious: true,
    repairedSuperblock: false,
    rebuiltSuperblock: rebuilt && { from: rebuilt.from, generation: rebuilt.generation, how: rebuilt.how },
    reasons,
    envCopies: copies.map((c) => ({
      name: c.name,
      valid: c.valid,
      flag: c.flag,
      protocol: protocolVars(c.vars),
      why: c.why,
    })),
    snapshot: null,
    trial: false,
    superblocks,
  };
  if (!chosen || (!ubootSuper && !rebuilt)) {
    await handle.close();
    return verdict;
  }
  // Linux mounts from the primary only; on the device the initramfs puts the newest valid backup in its
  // place (btrfs rescue super-recover) and the patched u-boot reads that same backup. The judge does the
  // same on the image for the time of the look, then puts the torn bytes back. With both copies torn, the
  // patched u-boot writes the superblock it rebuilt as the primary: the judge puts that one there.
  const primaryOffset = layout.pool.offset + SUPERBLOCK_OFFSETS[0];
  const torn = primaryValid ? null : superBytes.get(SUPERBLOCK_OFFSETS[0]);
  try {
    const backup = ubootSuper && superBytes.get(ubootSuper.offset);
    const repaired = rebuilt ? rebuilt.primary : backup ? repairedPrimary(backup) : null;
    if (torn && repaired) {
      await handle.write(repaired, 0, repaired.length, primaryOffset);
      verdict.repairedSuperblock = true;
    }
    await judgePool(image, chosen, context, verdict);
  } finally {
    if (torn) await handle.write(torn, 0, torn.length, primaryOffset);
    await handle.close();
  }
  verdict.ok = reasons.length === 0;
  verdict.suspicious = !verdict.ok;
  return verdict;
}

async function judgePool(image: string, chosen: EnvCopy, context: JudgeContext, verdict: Verdict): Promise<void> {
  const { layout } = context;
  const dir = context.scratchDir;
  const { reasons } = verdict;
  await withReadOnlyPool(image, layout, join(dir, 'pool'), async (pool) => {
    await checkPool(pool, chosen, context, verdict);
  }).catch((error: unknown) => {
    reasons.push(
      `the pool does not mount read-only: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
    );
  });
}

async function checkPool(pool: string, chosen: EnvCopy, context: JudgeContext, verdict: Verdict): Promise<void> {
  const { reasons } = verdict;
  {
    const loads = new Map<string, boolean>();
    const kernelLoads = (id: string): boolean => loads.get(id) ?? false;
    const env = readSwitchEnv(chosen.vars);
    const candidates = new Set([env.trial, env.current, env.previous, ...context.confirmedBefore].filter(Boolean));
    for (const id of candidates) loads.set(id, await snapshotLoads(pool, id));
    const decision = bootloaderDecision(env, kernelLoads);
    // boot.cmd: the decision's snapshot (a trial or acceptance only when it loaded), then current, then previous
    const order = [decision.boot, env.current, env.previous].filter(Boolean);
    const booted = order.find((id) => kernelLoads(id)) ?? null;
    verdict.snapshot = booted;
    verdict.trial = booted !== null && booted === decision.boot && decision.trial;
    if (!booted) reasons.push(`no snapshot boots (current=${env.current} previous=${env.previous}): u-boot prompt`);
    else if (!(await isReadOnly(join(pool, 'snapshots', booted)))) reasons.push(`snapshot ${booted} is not read-only`);
    for (const id of context.confirmedBefore) {
      if (!kernelLoads(id)) reasons.push(`snapshot ${id}, confirmed before the flow, is gone or does not load`);
    }
  }
}

async function snapshotLoads(pool: string, id: string): Promise<boolean> {
  for (const file of ['uImage', 'uInitrd']) {
    const bytes = await readFile(join(pool, 'snapshots', id, 'boot', file)).catch(() => null);
    if (!checkLegacyImage(bytes).ok) return false;
  }
  return true;
}

async function isReadOnly(path: string): Promise<boolean> {
  const out = await run('btrfs', ['property', 'get', '-ts', path, 'ro']).catch(() => '');
  return out.trim() === 'ro=true';
}

/**
 * `fn` again after a short pause when it fails, up to `attempts` times: other test suites on the machine
 * take loop devices at the same time (losetup --find races), and a state that truly does not mount fails
 * every attempt.
 */
async function retrying<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 300 * attempt));
    }
  }
}

/** The pool through a read-only loop device, mounted ro without log replay; always detached. */
export async function withReadOnlyPool<T>(
  image: string,
  layout: DiskLayout,
  mountPoint: string,
  fn: (mount: string) => Promise<T>,
): Promise<T> {
  await mkdir(mountPoint, { recursive: true });
  const args = [
    '--find',
    '--show',
    '--read-only',
    '-o',
    String(layout.pool.offset),
    '--sizelimit',
    String(layout.pool.size),
    image,
  ];
  const loop = (await retrying(5, () => run('losetup', args))).trim();
  try {
    await retrying(3, () => run('mount', ['-t', 'btrfs', '-o', 'ro,rescue=nologreplay,subvolid=5', loop, mountPoint]));
    try {
      return await fn(mountPoint);
    } finally {
      await retrying(3, () => run('umount', [mountPoint]));
    }
  } finally {
    await retrying(3, () => run('losetup', ['-d', loop]));
  }
}
