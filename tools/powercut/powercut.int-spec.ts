import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { flowNamed } from './flows';
import { runFlow } from './powercut-run';
import { replayCommand } from './report';
import { QEMU_COMMAND, type VdevBoard } from '../vdev/vdev-artifacts';
import { selectedBoards } from '../vdev/vdev-boards';
import { VirtualDevice } from '../vdev/virtual-device';
import { boardNamed, openSession, type Session } from './session';
import { superblockFromSectorZero } from './sector-zero-superblock';
import { SUPERBLOCK_OFFSETS, SUPERBLOCK_SIZE, checkSuperblock, rebuildSuperblock } from './uboot-view';

const MINUTE = 60_000;
const execFileAsync = promisify(execFile);
const repo = join(__dirname, '..', '..');

/** What the default run takes per board: arm64 boots cost about three times an x86 boot under TCG. */
interface Subset {
  board: VdevBoard;
  /** crash states of install-full judged (a seeded sample) */
  stateLimit: number;
  /**
   * the superblock repairs booted on purpose: patches 0002's and 0003's rebuilds on both (their C is built
   * per board), the torn primary (0001 + the initramfs, arch-independent but for the compiler) on one, for
   * CI time
   */
  repairs: string[];
}
const SUBSETS: Subset[] = [
  { board: 'x86', stateLimit: 20, repairs: ['both superblock copies', 'both copies, no mix'] },
  {
    board: 'arm64',
    stateLimit: 20,
    repairs: ['the primary superblock', 'both superblock copies', 'both copies, no mix'],
  },
];

/**
 * The CI subset of the power-cut run (the full run: `npm run test:powercut`, docs/boot-safety.md), per
 * board: the first flow recorded (install of a full release: download, receive, snapshot, metadata,
 * request), a seeded sample of its crash states judged (every suspicious one, the first torn-superblock
 * one and the first one rebuilt from two torn superblock copies booted for real), and one state replayed
 * alone with the command docs/boot-safety.md gives for the board.
 */
for (const { board, stateLimit, repairs } of selectedBoards(SUBSETS.map((s) => s.board)).map(
  (name) => SUBSETS.find((s) => s.board === name) as Subset,
)) {
  describePrivileged(
    `power cut at every write: CI subset (${board}, install-full)`,
    [
      requireRoot,
      requireCommand(QEMU_COMMAND[board]),
      requireCommand('btrfs'),
      requireCommand('mkimage'),
      requireCommand('mcopy'),
      requireLoopDevices,
    ],
    () => {
      let cacheDir: string;
      let dir: string;
      let session: Session;
      // the first flow of the chain, the one with the most writes (a full release received)
      const flows = ['install-full'].map(flowNamed);

      beforeAll(async () => {
        // the layout the CLI uses under COWROOT_CACHE_DIR, so the replay command below finds the recording
        cacheDir = await mkdtemp(join(tmpdir(), 'cowroot-powercut-'));
        dir = join(cacheDir, 'powercut', board);
        session = await openSession(dir, boardNamed(board), join(__dirname, '..', 'vdev'), {
          flows,
          log: (line) => console.log(line),
        });
      }, 30 * MINUTE);

      afterAll(async () => {
        if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
      });

      it.each(flows.map((f) => f.name))(
        '%s: every sampled crash state boots a snapshot, none confirmed before is lost',
        async (name) => {
          const recording = session.recordings.find((r) => r.flow === name);
          if (!recording) throw new Error(`${name} was not recorded`);
          const report = await runFlow(recording, session.artifacts, session.bootScript, {
            seed: 1,
            samplesPerEpoch: 3,
            stateLimit,
            // booted for real: every suspicious state; the repairs and a replayed state are booted below
            realBootsPerFlow: 0,
            repairedBootsPerFlow: 0,
            ubootBackupSuperblock: true,
            ubootRebuildSuperblock: true,
            ubootSectorZeroSuperblock: true,
            scratchDir: join(dir, 'scratch'),
            log: (line) => console.log(line),
          });
          console.log(`${board} ${name}: ${report.states} states judged, ${report.realBoots.length} booted for real`);
          expect(report.states).toBe(stateLimit);
          expect(report.realBoots.every((r) => r.realBoot?.ok)).toBe(true);
          const failures = report.failed.map(
            (f) => `${replayCommand(f, { board, seed: '1', samplesPerEpoch: 3 })}: ${f.verdict.reasons.join('; ')}`,
          );
          expect(failures).toEqual([]);
        },
        20 * MINUTE,
      );

      // the superblock repairs of the device, each on a disk torn on purpose (the sampled states above hit
      // them by chance): patch 0001 + the initramfs's super-recover, patch 0002's rebuild from a mix of the
      // sectors, and patch 0003's from a sector 0 (sector 7 torn differently in both copies stands for a
      // sector the commit changed that reached neither copy in the form the other copies' sectors need)
      it.each(
        [
          {
            tear: 'the primary superblock',
            sectors: [3, null],
            uboot: 'btrfs: primary superblock invalid, using the copy at 67108864',
          },
          {
            tear: 'both superblock copies',
            sectors: [3, 4],
            uboot: 'btrfs: both superblock copies torn, rebuilt generation',
          },
          {
            tear: 'both copies, no mix',
            sectors: [7, 7],
            uboot: 'btrfs: both superblock copies torn, rebuilt generation',
          },
        ].filter((r) => repairs.includes(r.tear)),
      )(
        '$tear torn: u-boot and the initramfs repair it and the guest boots (finding 1 and 2 regression)',
        async ({ sectors, uboot }) => {
          const device = await VirtualDevice.create(join(dir, 'torn-superblocks'), session.artifacts);
          try {
            const pool = device.partition(2);
            const offsets = SUPERBLOCK_OFFSETS.slice(0, 2);
            const copies = async (): Promise<Buffer[]> => {
              const handle = await open(device.disk, 'r');
              try {
                return await Promise.all(
                  offsets.map(async (offset) => {
                    const bytes = Buffer.alloc(SUPERBLOCK_SIZE);
                    await handle.read(bytes, 0, SUPERBLOCK_SIZE, pool.offset + offset);
                    return bytes;
                  }),
                );
              } finally {
                await handle.close();
              }
            };
            // each copy torn in a sector the other has whole: neither checks out, a sector-wise mix does
            const handle = await open(device.disk, 'r+');
            try {
              for (const [i, sector] of sectors.entries()) {
                if (sector === null) continue;
                await handle.write(Buffer.alloc(512, 0xa5 + i), 0, 512, pool.offset + offsets[i] + sector * 512);
              }
            } finally {
              await handle.close();
            }
            const torn = await copies();
            const valid = torn.map((bytes, i) => checkSuperblock(bytes, offsets[i]).valid);
            expect(valid).toEqual(sectors.map((s) => s === null));
            const copiesRead = torn.map((bytes, i) => ({ offset: offsets[i], bytes }));
            const model = rebuildSuperblock(copiesRead);
            const readPool = async (offset: number, length: number): Promise<Buffer> => {
              const disk = await open(device.disk, 'r');
              try {
                const bytes = Buffer.alloc(length);
                await disk.read(bytes, 0, length, pool.offset + offset);
                return bytes;
              } finally {
                await disk.close();
              }
            };
            const fromSectorZero = await superblockFromSectorZero(copiesRead, readPool);
            await device.setControl([]);
            const record = await device.boot({ timeoutMs: 240_000 });
            expect(record.log).toContain(uboot);
            // the generation u-boot rebuilt is the one the fast judge's model rebuilds, the same way
            if (sectors[0] === sectors[1]) {
              expect(model).toBeNull();
              expect(fromSectorZero).not.toBeNull();
              expect(record.log).toContain(
                `rebuilt generation ${fromSectorZero?.generation} from sector 0 of the copy at ${offsets[0]}`,
              );
            } else if (sectors[1] !== null) {
              expect(model).not.toBeNull();
              expect(record.log).toContain(`rebuilt generation ${model?.generation} from the sectors`);
            } else {
              expect(record.log).toContain('restoring its superblock from a backup copy');
            }
            expect(record.reachedPrompt).toBe(false);
            expect(record.linux?.snapshot).toBe('1');
            const [primary] = await copies();
            expect(checkSuperblock(primary, offsets[0]).valid).toBe(true);
          } finally {
            await device.remove();
          }
        },
        10 * MINUTE,
      );

      it(
        'replays one state alone with the command of docs/boot-safety.md, booting it for real',
        async () => {
          const doc = await readFile(join(repo, 'docs', 'boot-safety.md'), 'utf8');
          const boardFlag = board === 'x86' ? '' : ` --board ${board}`;
          const command = new RegExp(`^npm run powercut --${boardFlag} --flow install-full --state \\d+$`, 'm').exec(
            doc,
          )?.[0];
          if (!command) throw new Error(`docs/boot-safety.md has no replay command for install-full on ${board}`);
          const { stdout } = await execFileAsync('sh', ['-c', command], {
            cwd: repo,
            env: { ...process.env, COWROOT_CACHE_DIR: cacheDir },
            maxBuffer: 64 * 1024 * 1024,
          });
          expect(stdout).toMatch(/total: 1 distinct crash states, 0 failed, 1 booted for real/);
        },
        15 * MINUTE,
      );
    },
  );
}
