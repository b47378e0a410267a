import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandRunner } from '@cowroot/device';
import { prepareVdevArtifacts, type VdevArtifacts, type VdevBoard } from '../vdev/vdev-artifacts';
import { FLOWS, type Flow } from './flows';
import { loadRecordings, recordFlows, type Recording } from './recorder';

const runner = new CommandRunner();

/**
 * A board the power-cut run knows: one of the virtual device's (tools/vdev: its u-boot build, its QEMU,
 * its kernel); everything board-specific comes from there (VirtualDevice.qemuArgs, the artifacts).
 */
export interface PowercutBoard {
  name: VdevBoard;
  /** the board's u-boot carries uboot/patches/0001-btrfs-fall-back-to-a-backup-superblock.patch */
  ubootBackupSuperblock: boolean;
  /** … and uboot/patches/0002-btrfs-rebuild-a-superblock-from-two-torn-copies.patch */
  ubootRebuildSuperblock: boolean;
  /** … and uboot/patches/0003-btrfs-a-superblock-from-a-copy-s-sector-0.patch */
  ubootSectorZeroSuperblock: boolean;
}

// build-artifacts.sh applies every uboot/patches/*.patch to every board's u-boot
export const BOARDS: Record<VdevBoard, PowercutBoard> = {
  x86: { name: 'x86', ubootBackupSuperblock: true, ubootRebuildSuperblock: true, ubootSectorZeroSuperblock: true },
  arm64: { name: 'arm64', ubootBackupSuperblock: true, ubootRebuildSuperblock: true, ubootSectorZeroSuperblock: true },
};

export function boardNamed(name: string): PowercutBoard {
  const board = (BOARDS as Record<string, PowercutBoard | undefined>)[name];
  if (!board) throw new Error(`unknown board ${name}; boards: ${Object.keys(BOARDS).join(', ')}`);
  return board;
}

export interface Session {
  board: PowercutBoard;
  dir: string;
  artifacts: VdevArtifacts;
  bootScript: Buffer;
  recordings: Recording[];
}

/**
 * Artifacts, streams and recordings for one board, kept in `dir` between runs: a replay of one state
 * (`--flow … --state …`) uses the recordings of the run that reported it and the u-boot they were made
 * with. They are made again with `rerecord` (e.g. after a change of the u-boot patches or config).
 */
export async function openSession(
  dir: string,
  board: PowercutBoard,
  vdevDir: string,
  options: { rerecord?: boolean; flows?: Flow[]; log: (line: string) => void },
): Promise<Session> {
  await mkdir(dir, { recursive: true });
  const flows = options.flows ?? FLOWS;
  const sessionFile = join(dir, 'session.json');
  const kept = existsSync(sessionFile) ? (JSON.parse(await readFile(sessionFile, 'utf8')) as VdevArtifacts) : null;
  const recordingsDir = join(dir, 'recordings');
  let recordings = options.rerecord ? null : await loadRecordings(recordingsDir, flows);
  let artifacts: VdevArtifacts;
  if (recordings && kept?.board === board.name && existsSync(kept.baseDisk) && existsSync(kept.uBootRom)) {
    // a replay boots the u-boot the recordings were made with (kept in the cache under its own key)
    artifacts = kept;
  } else {
    recordings = null;
    options.log('[powercut] preparing u-boot, kernel and the base disk');
    artifacts = await prepareVdevArtifacts(dir, vdevDir, board.name);
  }
  const streams = join(dir, 'streams.img');
  if (!recordings) {
    options.log('[powercut] building the send streams (releases 4 and 5)');
    await runner.run('bash', [join(__dirnameOf(vdevDir), 'powercut', 'make-streams.sh'), artifacts.baseDisk, streams]);
    // the flows run as a chain on one device: record up to the last one asked for
    const last = Math.max(...flows.map((f) => FLOWS.indexOf(f)));
    recordings = await recordFlows(recordingsDir, artifacts, streams, FLOWS.slice(0, last + 1), options.log);
    await writeFile(sessionFile, `${JSON.stringify(artifacts, null, 2)}\n`);
    recordings = recordings.filter((r) => flows.some((f) => f.name === r.flow));
  }
  const scratch = join(dir, 'boot-scr');
  await mkdir(scratch, { recursive: true });
  for (const name of await readdir(scratch)) await runner.run('rm', ['-f', join(scratch, name)]);
  const fatOffset = recordings[0]?.layout.fat.offset ?? 1024 * 1024;
  await runner.run('mcopy', [
    '-n',
    '-i',
    `${artifacts.baseDisk}@@${fatOffset}`,
    '::/boot.scr',
    join(scratch, 'boot.scr'),
  ]);
  return { board, dir, artifacts, bootScript: await readFile(join(scratch, 'boot.scr')), recordings };
}

/** tools/ of this checkout, from tools/vdev. */
function __dirnameOf(vdevDir: string): string {
  return join(vdevDir, '..');
}
