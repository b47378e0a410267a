import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ENV,
  bootloaderDecision,
  confirmTrial,
  readSwitchEnv,
  rejectTrial,
  requestTrial,
  type EnvUpdate,
} from '@cowroot/device';
import { TrialOutcome } from '@cowroot/protocol';
import { requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { prepareVdevArtifacts, type VdevArtifacts } from './vdev-artifacts';
import { describeOnBoards } from './vdev-boards';
import { VirtualDevice, type BootOptions, type BootRecord } from './virtual-device';

const execFileAsync = promisify(execFile);
const MINUTE = 60_000;
/** snapshot 3 of the base disk carries a kernel whose uImage checksum is broken */
const kernelLoads = (snapshot: string): boolean => ['1', '2', '4'].includes(snapshot);
const PROTOCOL_VARS = Object.values(ENV);

function apply(env: Record<string, string>, ...updates: (EnvUpdate | null)[]): Record<string, string> {
  const next = { ...env };
  for (const update of updates) {
    for (const [name, value] of Object.entries(update ?? {})) {
      if (value) next[name] = value;
      else delete next[name];
    }
  }
  return next;
}

function protocolVars(env: Record<string, string>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of PROTOCOL_VARS) if (env[name]) picked[name] = env[name];
  return picked;
}

/** A digest of a directory tree: paths, types, modes, link targets and file contents. */
async function treeDigest(root: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      const info = await lstat(path);
      hash.update(`${path.slice(root.length)} ${info.mode} ${info.size}\n`);
      if (entry.isSymbolicLink()) hash.update(await readlink(path));
      else if (entry.isFile()) hash.update(await readFile(path));
      else if (entry.isDirectory()) await walk(path);
    }
  };
  await walk(root);
  return hash.digest('hex');
}

// The same scenarios on both boards: x86 (u-boot zboots the bzImage inside the uImage) and arm64 (the
// seed's path: bootm of uImage + uInitrd). COWROOT_VDEV_BOARDS=arm64 runs one board only.
describeOnBoards(
  ['x86', 'arm64'],
  'virtual device: u-boot boot.cmd + initramfs workspace in QEMU',
  [requireRoot, requireCommand('btrfs'), requireCommand('mkimage'), requireLoopDevices],
  (board) => {
    let workDir: string;
    let artifacts: VdevArtifacts;
    let device: VirtualDevice;
    let deviceCount = 0;

    beforeAll(async () => {
      workDir = await mkdtemp(join(tmpdir(), `cowroot-vdev-${board}-`));
      artifacts = await prepareVdevArtifacts(workDir, __dirname, board);
    }, 30 * MINUTE);

    beforeEach(async () => {
      device = await VirtualDevice.create(join(workDir, `device-${++deviceCount}`), artifacts);
    });

    // COWROOT_VDEV_KEEP=1 keeps the work dir (serial logs, disks) for a look after the run
    const keep = process.env.COWROOT_VDEV_KEEP === '1';

    const timings: string[] = [];
    afterEach(async () => {
      const name = expect
        .getState()
        .currentTestName?.replace(/^.*\] /, '')
        .split(':')[0];
      const seconds = device.bootSeconds;
      const total = seconds.reduce((sum, s) => sum + s, 0);
      timings.push(
        `${name}: ${seconds.length} boots, ${total.toFixed(0)} s (${seconds.map((s) => s.toFixed(1)).join(', ')})`,
      );
      if (!keep) await rm(device.disk, { force: true });
    });

    afterAll(async () => {
      console.log(`boot times on ${board}:\n${timings.join('\n')}`);
      if (keep) console.log(`virtual device work dir kept: ${workDir}`);
      else if (workDir && existsSync(workDir)) await rm(workDir, { recursive: true, force: true });
    });

    /**
     * Boots once and checks u-boot against the reference model: the snapshot and trial flag it boots are
     * bootloaderDecision()'s, and the env afterwards is the env before + the model's write + what the
     * guest wrote (`guestWrite`). A boot for which the model writes nothing and the guest neither must
     * leave both env copies byte for byte as they were.
     */
    async function modelBoot(control: string[], guestWrite: EnvUpdate | null, options: BootOptions = {}) {
      await device.setControl(control);
      const before = await device.readEnv();
      const bytesBefore = await device.envBytes();
      const decision = bootloaderDecision(readSwitchEnv(before), kernelLoads);
      const record = await device.boot(options);
      const after = await device.readEnv();
      expect(record.reachedPrompt).toBe(false);
      // a power cut may come before u-boot announces the kernel; every complete boot must announce it
      if (record.end === 'poweroff' || record.uboot) {
        expect(record.uboot).toEqual({ snapshot: decision.boot, trial: decision.trial ? '1' : '0' });
      }
      if (record.end === 'poweroff') {
        expect(record.linux).toMatchObject({ snapshot: decision.boot, trial: decision.trial ? '1' : '0' });
        expect(record.log).toContain('COWROOT-DONE');
      }
      expect(protocolVars(after)).toEqual(protocolVars(apply(before, decision.write, guestWrite)));
      if (!decision.write && !guestWrite) expect((await device.envBytes()).equals(bytesBefore)).toBe(true);
      return { record, before, after, decision };
    }

    function expectLinux(record: BootRecord, snapshot: string, trial: '0' | '1', release = snapshot): void {
      expect(record.linux).toMatchObject({ snapshot, trial, release });
    }

    it(
      '1. normal boot: no env write, a fresh workspace every boot, the snapshot untouched',
      async () => {
        const snapshotBefore = await device.withPool((pool) => treeDigest(join(pool, 'snapshots/1')));
        const first = await modelBoot(['touch-workspace'], null);
        expectLinux(first.record, '1', '0');
        expect(first.record.log).toContain('COWROOT-TOUCHED');
        await device.withPool(async (pool) => {
          expect(existsSync(join(pool, 'workspace/var/scratch'))).toBe(true);
          expect(existsSync(join(pool, 'snapshots/1/var/scratch'))).toBe(false);
        });

        const second = await modelBoot([], null);
        expectLinux(second.record, '1', '0');
        expect(second.record.linux?.scratch).toBe('absent');
        await device.withPool(async (pool) => {
          expect(existsSync(join(pool, 'workspace/var/scratch'))).toBe(false);
          expect(await treeDigest(join(pool, 'snapshots/1'))).toBe(snapshotBefore);
          const { stdout } = await execFileAsync('btrfs', ['property', 'get', '-ts', join(pool, 'snapshots/1'), 'ro']);
          expect(stdout.trim()).toBe('ro=true');
        });
      },
      10 * MINUTE,
    );

    it(
      '2. trial requested in Linux, confirmed in the trial, accepted at the next boot, stays current',
      async () => {
        const request = await modelBoot(['request 2'], requestTrial('2'));
        expectLinux(request.record, '1', '0');

        const trial = await modelBoot(['confirm'], confirmTrial());
        expectLinux(trial.record, '2', '1');
        expect(trial.after[ENV.state]).toBe('confirmed');

        const acceptance = await modelBoot([], null);
        expectLinux(acceptance.record, '2', '0');
        expect(protocolVars(acceptance.after)).toEqual({
          [ENV.current]: '2',
          [ENV.previous]: '1',
          [ENV.result]: TrialOutcome.Accepted,
          [ENV.resultSnapshot]: '2',
        });

        // u-boot's saves carried no helper variables (cr_*, filesize, bootargs ...) into the env
        const allowed = new Set([...Object.keys(request.before), ...PROTOCOL_VARS]);
        for (const env of [trial.after, acceptance.after])
          expect(Object.keys(env).filter((name) => !allowed.has(name))).toEqual([]);

        const normal = await modelBoot([], null);
        expectLinux(normal.record, '2', '0');
      },
      15 * MINUTE,
    );

    it(
      '3. trial not confirmed (Linux powers off): the next boot is the old snapshot, env says bootloader-fallback',
      async () => {
        await device.writeEnv(requestTrial('2'));
        const trial = await modelBoot([], null);
        expectLinux(trial.record, '2', '1');
        expect(trial.after[ENV.state]).toBe('trying');

        const fallback = await modelBoot([], null);
        expectLinux(fallback.record, '1', '0');
        expect(fallback.record.log).toContain('was not confirmed');
        expect(protocolVars(fallback.after)).toEqual({
          [ENV.current]: '1',
          [ENV.result]: TrialOutcome.BootloaderFallback,
          [ENV.resultSnapshot]: '2',
        });
      },
      10 * MINUTE,
    );

    it(
      '3b. trial rejected by Linux (failed health check): the next boot is the old snapshot, no u-boot write',
      async () => {
        await device.writeEnv(requestTrial('2'));
        const trial = await modelBoot(['reject'], rejectTrial('2'));
        expectLinux(trial.record, '2', '1');
        expect(trial.record.log).toContain('COWROOT-REJECTED 2');

        const fallback = await modelBoot([], null);
        expectLinux(fallback.record, '1', '0');
        expect(protocolVars(fallback.after)).toEqual({
          [ENV.current]: '1',
          [ENV.result]: TrialOutcome.HealthRejected,
          [ENV.resultSnapshot]: '2',
        });
      },
      10 * MINUTE,
    );

    it(
      '4. trial snapshot with a broken kernel: fallback in the same boot, kernel-load-failed',
      async () => {
        await device.writeEnv(requestTrial('3'));
        const boot = await modelBoot([], null);
        expectLinux(boot.record, '1', '0');
        expect(boot.record.log).toMatch(/Bad Data CRC|checksum/i);
        const allowed = new Set([...Object.keys(boot.before), ...PROTOCOL_VARS]);
        expect(Object.keys(boot.after).filter((name) => !allowed.has(name))).toEqual([]);
        expect(protocolVars(boot.after)).toEqual({
          [ENV.current]: '1',
          [ENV.result]: TrialOutcome.KernelLoadFailed,
          [ENV.resultSnapshot]: '3',
        });
      },
      10 * MINUTE,
    );

    it(
      '5a. power cuts through a trial and its acceptance: every following boot reaches a snapshot',
      async () => {
        // u-boot waits 5 s before its saveenv (test hook), so the cut lands before the write every time
        await device.writeEnv({ ...requestTrial('2'), cowroot_test_pause: '5' });
        // cut after the trial loaded, before `trying` is saved: nothing written, the request stands
        const bytesBefore = await device.envBytes();
        const early = await device.boot({ cutPowerOn: 'cowroot: saving env' });
        expect(early.end).toBe('power-cut');
        expect(early.log).toContain('cowroot: trial 2 loaded');
        expect((await device.envBytes()).equals(bytesBefore)).toBe(true);
        await device.writeEnv({ cowroot_test_pause: '' });

        // the trial boots; cut right after Linux confirmed
        const confirmed = await modelBoot(['confirm'], confirmTrial(), { cutPowerOn: 'COWROOT-CONFIRMED' });
        expect(confirmed.record.end).toBe('power-cut');
        expectLinux(confirmed.record, '2', '1');

        // the acceptance is saved; cut before the kernel starts
        const accepted = await modelBoot([], null, { cutPowerOn: /cowroot: env saved[^\n]*\n/ });
        expect(accepted.record.end).toBe('power-cut');
        expect(accepted.after[ENV.current]).toBe('2');

        const normal = await modelBoot([], null);
        expectLinux(normal.record, '2', '0');
      },
      15 * MINUTE,
    );

    it(
      '5b. power cut once `trying` is saved: the next boot falls back to the confirmed snapshot',
      async () => {
        await device.writeEnv(requestTrial('2'));
        const cut = await modelBoot([], null, { cutPowerOn: /cowroot: env saved[^\n]*\n/ });
        expect(cut.record.end).toBe('power-cut');
        expect(cut.after[ENV.state]).toBe('trying');

        const fallback = await modelBoot([], null);
        expectLinux(fallback.record, '1', '0');
        expect(fallback.after[ENV.result]).toBe(TrialOutcome.BootloaderFallback);
      },
      10 * MINUTE,
    );

    it(
      '5c. one env copy corrupted (torn write): u-boot and fw_printenv use the other copy',
      async () => {
        // the newer copy (holding the request) is torn: the older one says "no trial", a normal boot
        await device.writeEnv(requestTrial('2'));
        await device.corruptEnvCopy('newer');
        const normal = await modelBoot([], null);
        expectLinux(normal.record, '1', '0');
        expect(normal.before[ENV.state] ?? '').toBe('');
        expect(normal.record.log).not.toMatch(/using default environment/i);

        // the older copy is torn: the newer one (the request) is used, the trial boots
        await device.writeEnv(requestTrial('2'));
        await device.corruptEnvCopy('older');
        const trial = await modelBoot([], null);
        expectLinux(trial.record, '2', '1');
        expect(trial.record.log).not.toMatch(/using default environment/i);
      },
      10 * MINUTE,
    );

    it(
      '5d. the trial Linux hangs and the power is cut: the next boot falls back',
      async () => {
        await device.writeEnv(requestTrial('2'));
        const hung = await modelBoot(['hang'], null, { cutPowerOn: 'COWROOT-HANGING' });
        expect(hung.record.end).toBe('power-cut');
        expectLinux(hung.record, '2', '1');

        const fallback = await modelBoot([], null);
        expectLinux(fallback.record, '1', '0');
        expect(fallback.after[ENV.result]).toBe(TrialOutcome.BootloaderFallback);
      },
      10 * MINUTE,
    );

    it(
      '5e. the trial Linux hangs with the watchdog armed: the reset boots the fallback, no power cut needed',
      async () => {
        await device.writeEnv(requestTrial('2'));
        await device.setControl(['watchdog-hang']);
        const record = await device.boot({ allowReset: true });
        expect(record.end).toBe('poweroff');
        const trialAt = record.log.indexOf('COWROOT-WATCHDOG-ARMED');
        const fallbackAt = record.log.indexOf('cowroot: trial 2 was not confirmed');
        expect(record.log).toContain('cowroot: booting snapshot 2 trial=1');
        expect(trialAt).toBeGreaterThan(0);
        expect(fallbackAt).toBeGreaterThan(trialAt);
        expect(record.reachedPrompt).toBe(false);
        // after the reset: the fallback boot (the guest cleared its commands, so this one powers off)
        expect(record.uboot).toEqual({ snapshot: '1', trial: '0' });
        const env = await device.readEnv();
        expect(env[ENV.result]).toBe(TrialOutcome.BootloaderFallback);
        expect(env[ENV.current]).toBe('1');
      },
      10 * MINUTE,
    );

    it(
      '6. commit: the workspace snapshotted read-only in the guest, tried, confirmed, then current',
      async () => {
        const commit = await modelBoot(['touch-workspace', 'commit 4', 'request 4'], requestTrial('4'));
        expect(commit.record.log).toContain('COWROOT-COMMITTED 4');
        await device.withPool(async (pool) => {
          const { stdout } = await execFileAsync('btrfs', ['property', 'get', '-ts', join(pool, 'snapshots/4'), 'ro']);
          expect(stdout.trim()).toBe('ro=true');
          expect(existsSync(join(pool, 'snapshots/4/var/scratch'))).toBe(true);
        });

        const trial = await modelBoot(['confirm'], confirmTrial());
        expectLinux(trial.record, '4', '1', '4');
        expect(trial.record.linux?.scratch).toBe('present');

        const acceptance = await modelBoot([], null);
        expectLinux(acceptance.record, '4', '0', '4');
        expect(acceptance.after[ENV.current]).toBe('4');
        expect(acceptance.after[ENV.previous]).toBe('1');
      },
      15 * MINUTE,
    );
  },
);
