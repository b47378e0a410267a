import { access, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, LastTrialResult, PendingTrial, TrialOutcome, TrialState } from '@cowroot/protocol';
import { BootContext, parseBootContext } from './boot-context';
import { DeviceError } from './device-error';
import { writeFileAtomic } from './atomic-file';
import { SnapshotStore } from './snapshot-store';
import {
  EnvUpdate,
  SwitchEnv,
  SwitchState,
  cancelTrial,
  confirmTrial,
  readSwitchEnv,
  rejectTrial,
  requestTrial,
} from './switch-protocol';

/** The part of UbootEnv the switch needs (UbootEnv implements it). */
export interface SwitchEnvStore {
  readAll(): Promise<Record<string, string>>;
  write(update: EnvUpdate): Promise<void>;
}

export interface SwitchStatus {
  /** cowroot.snapshot= of this boot */
  booted: string | null;
  /** cowroot.trial=1: this boot is the one try of a trial, not accepted yet */
  trialBoot: boolean;
  /** env cowroot_current: what u-boot boots when no trial is pending */
  current: string | null;
  /** the snapshot a failing trial falls back to: the same as `current`, named as in DeviceStateMessage */
  fallback: string | null;
  /** env cowroot_previous: current before the last accepted trial (a remote-rollback target) */
  previous: string | null;
  pendingTrial: PendingTrial | null;
  lastTrialResult: LastTrialResult | null;
}

/** Why a trial was rejected, kept in state/ across the reboot into the fallback (the env has no room for it). */
export interface TrialRejection {
  snapshot: string;
  check?: string;
  outputTail?: string;
  rejectedAt: string;
}

export interface SwitchServiceOptions {
  /**
   * Paths relative to a snapshot that must exist before a trial of it is requested, e.g.
   * ['boot/vmlinuz', 'boot/initrd.img'] — the files uboot/boot.cmd loads. Default: none; a snapshot whose
   * kernel does not load is still safe (u-boot records kernel-load-failed and boots current).
   */
  requiredBootFiles?: string[];
  now?: () => Date;
}

const TRIAL_STATE: Record<SwitchState, TrialState | null> = {
  [SwitchState.Idle]: null,
  [SwitchState.Requested]: TrialState.Requested,
  [SwitchState.Trying]: TrialState.Trying,
  [SwitchState.Confirmed]: TrialState.Confirmed,
};

const OUTPUT_TAIL_MAX = 4096;
const CHECK_NAME_MAX = 128;

/**
 * Linux's side of the switch protocol (switch-protocol.ts, docs/device.md §3). Each operation reads the env
 * afresh and makes at most ONE atomic env write with the builders of switch-protocol.ts; an operation
 * that finds its work done already writes nothing, so a retried command is harmless.
 */
export class SwitchService {
  readonly boot: BootContext;
  private readonly requiredBootFiles: string[];
  private readonly now: () => Date;

  constructor(
    private readonly env: SwitchEnvStore,
    private readonly store: SnapshotStore,
    kernelCmdline: string,
    options: SwitchServiceOptions = {},
  ) {
    this.boot = parseBootContext(kernelCmdline);
    this.requiredBootFiles = options.requiredBootFiles ?? [];
    this.now = options.now ?? (() => new Date());
  }

  get rejectionPath(): string {
    return join(this.store.stateDir, 'trial-rejection.json');
  }

  async readEnv(): Promise<SwitchEnv> {
    return readSwitchEnv(await this.env.readAll());
  }

  private async readRejection(): Promise<TrialRejection | null> {
    try {
      const value = JSON.parse(await readFile(this.rejectionPath, 'utf8')) as TrialRejection;
      return typeof value.snapshot === 'string' ? value : null;
    } catch {
      return null;
    }
  }

  async status(): Promise<SwitchStatus> {
    const env = await this.readEnv();
    const trialState = env.trial ? TRIAL_STATE[env.state] : null;
    let lastTrialResult: LastTrialResult | null = null;
    if (env.resultSnapshot && env.result) {
      lastTrialResult = { snapshot: env.resultSnapshot, outcome: env.result };
      if (lastTrialResult.outcome === TrialOutcome.HealthRejected) {
        const rejection = await this.readRejection();
        if (rejection?.snapshot === env.resultSnapshot) {
          if (rejection.check) lastTrialResult.check = rejection.check;
          if (rejection.outputTail) lastTrialResult.outputTail = rejection.outputTail;
        }
      }
    }
    return {
      booted: this.boot.snapshot,
      trialBoot: this.boot.trial,
      current: env.current || null,
      fallback: env.current || null,
      previous: env.previous || null,
      pendingTrial: trialState ? { snapshot: env.trial, state: trialState } : null,
      lastTrialResult,
    };
  }

  /** Snapshots that must not be deleted on request: booted, current (the fallback) and the trial. */
  async snapshotsInUse(): Promise<Set<string>> {
    const env = await this.readEnv();
    return new Set([this.boot.snapshot, env.current, env.trial].filter((id): id is string => !!id));
  }

  /** Everything the env or this boot points at: what the garbage collector never deletes. */
  async snapshotsReferenced(): Promise<Set<string>> {
    const env = await this.readEnv();
    return new Set(
      [this.boot.snapshot, env.current, env.trial, env.previous, env.resultSnapshot].filter((id): id is string => !!id),
    );
  }

  /**
   * Ask u-boot to try `id` once at the next boot. The snapshot must exist, be read-only and hold the
   * required boot files. Refused (TRIAL_PENDING) while a trial is being booted or confirmed; a trial that
   * is only requested is replaced. Requesting the current snapshot withdraws a requested trial instead.
   * Returns what was written, null when nothing had to be.
   */
  async requestTrial(id: string): Promise<EnvUpdate | null> {
    const snapshot = await this.store.get(id);
    if (!snapshot)
      throw new DeviceError(ErrorCode.SnapshotNotFound, `no snapshot ${JSON.stringify(id)} on this device`);
    if (!snapshot.readOnly) throw new DeviceError(ErrorCode.InvalidState, `snapshot ${id} is not read-only`);
    for (const file of this.requiredBootFiles) {
      await access(join(this.store.snapshotPath(id), file)).catch((error: unknown) => {
        throw new DeviceError(ErrorCode.SnapshotNotFound, `snapshot ${id} has no ${file}, it cannot boot`, {
          cause: error,
        });
      });
    }
    const env = await this.readEnv();
    if (env.state === SwitchState.Trying || env.state === SwitchState.Confirmed) {
      throw new DeviceError(ErrorCode.TrialPending, `snapshot ${env.trial} is being tried (${env.state})`);
    }
    if (id === env.current) {
      if (env.state !== SwitchState.Requested) return null;
      return this.write(cancelTrial());
    }
    if (env.state === SwitchState.Requested && env.trial === id) return null;
    await rm(this.rejectionPath, { force: true });
    return this.write(requestTrial(id));
  }

  /** Withdraw a trial that u-boot has not started. Nothing pending → no write; being tried → TRIAL_PENDING. */
  async cancelTrial(): Promise<EnvUpdate | null> {
    const env = await this.readEnv();
    if (env.state === SwitchState.Idle) return null;
    if (env.state !== SwitchState.Requested) {
      throw new DeviceError(
        ErrorCode.TrialPending,
        `snapshot ${env.trial} is already being tried (${env.state}); reject it instead of canceling`,
      );
    }
    return this.write(cancelTrial());
  }

  /** The trial boot's acceptance, after every required health check passed. */
  async confirm(): Promise<EnvUpdate | null> {
    const env = await this.readEnv();
    if (this.boot.trial && env.trial === this.boot.snapshot && env.state === SwitchState.Confirmed) return null;
    this.assertTrialBoot(env, 'confirm');
    return this.write(confirmTrial());
  }

  /**
   * The trial boot's refusal (a required health check failed): the next boot is the fallback. The reason
   * goes to state/trial-rejection.json first, so status() after that boot can tell which check failed.
   * After confirm() it is refused: a confirmed trial is not rolled back late.
   */
  async reject(reason: { check?: string; outputTail?: string } = {}): Promise<EnvUpdate | null> {
    const env = await this.readEnv();
    const snapshot = this.boot.snapshot;
    if (
      this.boot.trial &&
      snapshot &&
      env.state === SwitchState.Idle &&
      env.result === TrialOutcome.HealthRejected &&
      env.resultSnapshot === snapshot
    ) {
      return null;
    }
    this.assertTrialBoot(env, 'reject');
    const rejection: TrialRejection = { snapshot: env.trial, rejectedAt: this.now().toISOString() };
    if (reason.check) rejection.check = reason.check.slice(0, CHECK_NAME_MAX);
    if (reason.outputTail) rejection.outputTail = reason.outputTail.slice(-OUTPUT_TAIL_MAX);
    await writeFileAtomic(this.rejectionPath, `${JSON.stringify(rejection, null, 2)}\n`);
    return this.write(rejectTrial(env.trial));
  }

  private assertTrialBoot(env: SwitchEnv, action: string): void {
    if (!this.boot.trial || !this.boot.snapshot) {
      throw new DeviceError(ErrorCode.InvalidState, `cannot ${action}: this is not a trial boot`);
    }
    if (env.trial !== this.boot.snapshot || env.state !== SwitchState.Trying) {
      throw new DeviceError(
        ErrorCode.InvalidState,
        `cannot ${action}: booted ${this.boot.snapshot} as a trial but the env has trial ${JSON.stringify(env.trial)} in state ${JSON.stringify(env.state)}`,
      );
    }
  }

  private async write(update: EnvUpdate): Promise<EnvUpdate> {
    await this.env.write(update);
    return update;
  }
}
