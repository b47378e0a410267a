import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { flowNamed } from './flows';
import { runFlow } from './powercut-run';
import { replayCommand } from './report';
import { boardNamed, openSession, type Session } from './session';

const MINUTE = 60_000;

/**
 * The CI subset of the power-cut run (the full run: `npm run test:powercut`, docs/boot-safety.md):
 * the first two flows recorded (install of a full release, u-boot's `trying` save and the confirmation),
 * a seeded sample of their crash states judged, and some of them booted for real in u-boot + kernel.
 */
describePrivileged(
  'power cut at every write: CI subset (x86)',
  [
    requireRoot,
    requireCommand('qemu-system-i386'),
    requireCommand('btrfs'),
    requireCommand('mkimage'),
    requireCommand('mcopy'),
    requireLoopDevices,
  ],
  () => {
    let dir: string;
    let session: Session;
    const flows = ['install-full', 'trial-confirm'].map(flowNamed);

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'cowroot-powercut-'));
      session = await openSession(dir, boardNamed('x86'), join(__dirname, '..', 'vdev'), {
        flows,
        log: (line) => console.log(line),
      });
    }, 20 * MINUTE);

    afterAll(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it.each(flows.map((f) => f.name))(
      '%s: every sampled crash state boots a snapshot, none confirmed before is lost',
      async (name) => {
        const recording = session.recordings.find((r) => r.flow === name);
        if (!recording) throw new Error(`${name} was not recorded`);
        const report = await runFlow(recording, session.artifacts, session.bootScript, {
          seed: 1,
          samplesPerEpoch: 3,
          stateLimit: 40,
          realBootsPerFlow: 1,
          ubootBackupSuperblock: true,
          scratchDir: join(dir, 'scratch'),
          log: (line) => console.log(line),
        });
        console.log(`${name}: ${report.states} states judged, ${report.realBoots.length} booted for real`);
        expect(report.states).toBe(40);
        expect(report.realBoots.length).toBeGreaterThanOrEqual(1);
        expect(report.realBoots.every((r) => r.realBoot?.ok)).toBe(true);
        const failures = report.failed.map((f) => `${replayCommand(f, '1')}: ${f.verdict.reasons.join('; ')}`);
        expect(failures).toEqual([]);
      },
      15 * MINUTE,
    );
  },
);
