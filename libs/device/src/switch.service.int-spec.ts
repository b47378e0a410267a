import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, SnapshotOrigin, TrialOutcome, TrialState } from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { BtrfsAdapter } from './btrfs.adapter';
import { CommandResult, CommandRunner, RunOptions } from './command-runner';
import { DeviceError } from './device-error';
import { createFileBackedEnv, FileBackedEnv } from './file-backed-env';
import { GarbageCollector } from './garbage-collector';
import { SnapshotStore } from './snapshot-store';
import { ENV, KERNEL_ARG, SwitchState, bootloaderDecision, readSwitchEnv } from './switch-protocol';
import { SwitchService } from './switch.service';
import { LoopBtrfs, createLoopBtrfs } from './testing/loop-btrfs';
import { UbootEnv } from './uboot-env.adapter';

/** The real runner, counting the calls per command, to prove "one atomic env write per transition". */
class CountingRunner extends CommandRunner {
  readonly calls = new Map<string, number>();

  override run(command: string, args: readonly string[], options?: RunOptions): Promise<CommandResult> {
    this.calls.set(command, (this.calls.get(command) ?? 0) + 1);
    return super.run(command, args, options);
  }

  count(command: string): number {
    return this.calls.get(command) ?? 0;
  }
}

describePrivileged(
  'SwitchService: trial cycles on real btrfs + real fw_setenv, u-boot played by bootloaderDecision',
  [requireRoot, requireCommand('btrfs'), requireCommand('fw_setenv'), requireCommand('mkenvimage'), requireLoopDevices],
  () => {
    const runner = new CountingRunner();
    let tmp: string;
    let pool: LoopBtrfs | undefined;
    let fileEnv: FileBackedEnv;
    let env: UbootEnv;
    let store: SnapshotStore;
    let cmdline: string;

    /** one power-on: u-boot reads the env, maybe writes once, boots; returns the kernel command line */
    async function bootloader(kernelLoads: (id: string) => boolean = () => true) {
      const decision = bootloaderDecision(readSwitchEnv(await env.readAll()), kernelLoads);
      if (decision.write) await env.write(decision.write);
      cmdline = `console=ttyS0 ${KERNEL_ARG.snapshot}=${decision.boot} ${KERNEL_ARG.trial}=${decision.trial ? 1 : 0}`;
      return decision;
    }

    /** the agent starting in the booted system */
    const linux = (options = {}) => new SwitchService(env, store, cmdline, options);

    /** runs `action` and returns how many fw_setenv calls it made */
    async function envWrites(action: () => Promise<unknown>): Promise<number> {
      const before = runner.count('fw_setenv');
      await action();
      return runner.count('fw_setenv') - before;
    }

    async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
      const error = await promise.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DeviceError);
      expect((error as DeviceError).code).toBe(code);
    }

    beforeAll(async () => {
      tmp = await mkdtemp(join(tmpdir(), 'cowroot-switch-test-'));
      pool = await createLoopBtrfs({ sizeMiB: 256, label: 'switch' });
      const btrfs = new BtrfsAdapter(runner);
      let clock = Date.UTC(2026, 0, 1);
      store = new SnapshotStore({ poolPath: pool.mount, btrfs, now: () => new Date((clock += 60_000)) });
      await store.init();
      // three bootable snapshots made from a workspace, and one without a kernel
      await btrfs.createSubvolume(store.workspacePath);
      await mkdir(join(store.workspacePath, 'boot'));
      for (const id of ['rel-0', 'rel-1', 'rel-2', 'rel-3']) {
        await writeFile(join(store.workspacePath, 'boot/vmlinuz'), `kernel of ${id}`);
        await store.commitWorkspace(id);
      }
      await rm(join(store.workspacePath, 'boot'), { recursive: true });
      await store.commitWorkspace('no-kernel');
      fileEnv = await createFileBackedEnv(join(tmp, 'env'), { initial: { [ENV.current]: 'rel-1' }, runner });
      env = new UbootEnv(fileEnv.configPath, runner);
    });

    afterAll(async () => {
      await pool?.cleanup();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it('a normal boot writes nothing to the env', async () => {
      const copies = await Promise.all(fileEnv.copies.map((c) => readFile(c)));
      const writes = await envWrites(() => bootloader());
      expect(writes).toBe(0);
      expect(await Promise.all(fileEnv.copies.map((c) => readFile(c)))).toEqual(copies);
      expect(await linux().status()).toEqual({
        booted: 'rel-1',
        trialBoot: false,
        current: 'rel-1',
        fallback: 'rel-1',
        previous: null,
        pendingTrial: null,
        lastTrialResult: null,
      });
    });

    it('request → trial boot → confirm → accepted, one env write per step', async () => {
      expect(await envWrites(() => linux().requestTrial('rel-2'))).toBe(1);
      expect((await linux().status()).pendingTrial).toEqual({ snapshot: 'rel-2', state: TrialState.Requested });
      expect(await envWrites(() => linux().requestTrial('rel-2'))).toBe(0); // redelivered command

      expect(await envWrites(() => bootloader())).toBe(1); // requested → trying
      const trial = linux();
      expect(await trial.status()).toMatchObject({
        booted: 'rel-2',
        trialBoot: true,
        fallback: 'rel-1',
        pendingTrial: { snapshot: 'rel-2', state: TrialState.Trying },
      });
      await expectCode(trial.requestTrial('rel-3'), ErrorCode.TrialPending);
      await expectCode(trial.cancelTrial(), ErrorCode.TrialPending);
      expect(await envWrites(() => trial.confirm())).toBe(1);
      expect(await envWrites(() => trial.confirm())).toBe(0); // idempotent
      await expectCode(trial.reject({ check: 'late' }), ErrorCode.InvalidState); // no late fallback after confirm

      expect(await envWrites(() => bootloader())).toBe(1); // confirmed → accepted
      expect(await linux().status()).toEqual({
        booted: 'rel-2',
        trialBoot: false,
        current: 'rel-2',
        fallback: 'rel-2',
        previous: 'rel-1',
        pendingTrial: null,
        lastTrialResult: { snapshot: 'rel-2', outcome: TrialOutcome.Accepted },
      });
      expect(await envWrites(() => bootloader())).toBe(0);
    });

    it('a failed health check rejects: the next boot is the fallback, and it knows which check and why', async () => {
      await linux().requestTrial('rel-3');
      await bootloader();
      const trial = linux();
      expect(
        await envWrites(() => trial.reject({ check: 'required.d/50-network', outputTail: 'no route to server' })),
      ).toBe(1);
      expect(await envWrites(() => trial.reject({ check: 'required.d/50-network' }))).toBe(0);

      const decision = await bootloader();
      expect(decision).toMatchObject({ boot: 'rel-2', trial: false, write: null });
      expect(await linux().status()).toMatchObject({
        booted: 'rel-2',
        current: 'rel-2',
        pendingTrial: null,
        lastTrialResult: {
          snapshot: 'rel-3',
          outcome: TrialOutcome.HealthRejected,
          check: 'required.d/50-network',
          outputTail: 'no route to server',
        },
      });
    });

    it('a trial that is never confirmed (hang, crash, power cut) falls back at the next boot', async () => {
      await linux().requestTrial('rel-3');
      await bootloader(); // trying; Linux dies before confirming
      expect(await envWrites(() => bootloader())).toBe(1);
      const status = await linux().status();
      expect(status).toMatchObject({ booted: 'rel-2', trialBoot: false, current: 'rel-2', pendingTrial: null });
      // the old rejection record is about an earlier try and must not be attached to this outcome
      expect(status.lastTrialResult).toEqual({ snapshot: 'rel-3', outcome: TrialOutcome.BootloaderFallback });
    });

    it('a trial kernel that does not load falls back in the same boot', async () => {
      await linux().requestTrial('rel-3');
      const decision = await bootloader((id) => id !== 'rel-3');
      expect(decision).toMatchObject({ boot: 'rel-2', trial: false });
      expect((await linux().status()).lastTrialResult).toEqual({
        snapshot: 'rel-3',
        outcome: TrialOutcome.KernelLoadFailed,
      });
    });

    it('cancel withdraws a requested trial; nothing pending is a no-op', async () => {
      const service = linux();
      await service.requestTrial('rel-3');
      expect(await envWrites(() => service.cancelTrial())).toBe(1);
      expect((await service.readEnv()).state).toBe(SwitchState.Idle);
      expect(await envWrites(() => service.cancelTrial())).toBe(0);
      // asking for the current snapshot while a trial is requested withdraws it too
      await service.requestTrial('rel-3');
      expect(await service.requestTrial('rel-2')).toEqual({ [ENV.trial]: '', [ENV.state]: SwitchState.Idle });
    });

    it('refuses trials of missing or unbootable snapshots, and confirm/reject outside a trial boot', async () => {
      const service = linux({ requiredBootFiles: ['boot/vmlinuz'] });
      await expectCode(service.requestTrial('nope'), ErrorCode.SnapshotNotFound);
      await expectCode(service.requestTrial('no-kernel'), ErrorCode.SnapshotNotFound);
      await expectCode(service.confirm(), ErrorCode.InvalidState);
      await expectCode(service.reject({ check: 'x' }), ErrorCode.InvalidState);
      expect((await service.readEnv()).state).toBe(SwitchState.Idle);
    });

    it('protects what is in use from delete and what the env points at from GC', async () => {
      const service = linux();
      await service.requestTrial('rel-3');
      expect(await service.snapshotsInUse()).toEqual(new Set(['rel-2', 'rel-3']));
      await expectCode(store.delete('rel-2', await service.snapshotsInUse()), ErrorCode.SnapshotInUse);
      await expectCode(store.delete('rel-3', await service.snapshotsInUse()), ErrorCode.SnapshotInUse);

      const gc = new GarbageCollector(store, () => service.snapshotsReferenced());
      // keep only the newest (no-kernel) and the referenced: rel-1 is cowroot_previous, rel-2 booted and
      // current, rel-3 the trial and the last result; rel-0 is nothing any more
      expect(await gc.applyRetention(1)).toEqual(['rel-0']);
      await service.cancelTrial();
      expect((await store.list()).map((s) => [s.id, s.origin])).toEqual([
        ['rel-1', SnapshotOrigin.Committed],
        ['rel-2', SnapshotOrigin.Committed],
        ['rel-3', SnapshotOrigin.Committed],
        ['no-kernel', SnapshotOrigin.Committed],
      ]);
    });
  },
);
