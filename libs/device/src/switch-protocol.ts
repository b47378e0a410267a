import { TrialOutcome, isTrialOutcome } from '@cowroot/protocol';

/**
 * The switch protocol: the u-boot env variables that Linux (libs/device) and u-boot (uboot/boot.cmd)
 * share, and every transition between them. docs/device.md §3 has the state table; keep the three in step.
 *
 * Rules the design keeps:
 * - a normal boot (no trial pending) writes nothing to the env;
 * - each transition below is ONE atomic env write (`fw_setenv -s` on Linux, one `saveenv` in u-boot,
 *   which with a redundant env writes the inactive copy and flips the flag);
 * - a trial is booted at most once: u-boot moves `requested` → `trying` after it has loaded the trial's
 *   kernel and initrd into memory and before it starts the kernel (a trial that does not load is
 *   `kernel-load-failed` in the same boot, as bootloaderDecision models), and finding `trying` at the next
 *   boot means the trial was never confirmed (hang, crash, power cut, failed checks that could not even
 *   write) → fall back.
 */
export const ENV = {
  /** the confirmed snapshot booted when no trial is pending */
  current: 'cowroot_current',
  /** the snapshot previously current, kept after an acceptance for a remote rollback */
  previous: 'cowroot_previous',
  /** the snapshot to try */
  trial: 'cowroot_trial',
  /** '' | requested | trying | confirmed */
  state: 'cowroot_state',
  /** outcome of the last finished trial: a TrialOutcome (@cowroot/protocol) */
  result: 'cowroot_result',
  /** the snapshot that `cowroot_result` is about */
  resultSnapshot: 'cowroot_result_snapshot',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

export enum SwitchState {
  Idle = '',
  Requested = 'requested',
  Trying = 'trying',
  Confirmed = 'confirmed',
}

/** Kernel command line parameters that boot.cmd passes (docs/device.md §3.2). */
export const KERNEL_ARG = {
  snapshot: 'cowroot.snapshot',
  /** 1 on the one boot of a trial, 0 otherwise */
  trial: 'cowroot.trial',
} as const;

/** A set of env variables to write in one atomic call; '' deletes a variable. */
export type EnvUpdate = Partial<Record<EnvName, string>>;

/** Linux: ask u-boot to try `snapshot` once at the next boot. */
export function requestTrial(snapshot: string): EnvUpdate {
  return { [ENV.trial]: snapshot, [ENV.state]: SwitchState.Requested };
}

/** Linux: withdraw a requested trial that has not been booted yet. */
export function cancelTrial(): EnvUpdate {
  return { [ENV.trial]: '', [ENV.state]: SwitchState.Idle };
}

/** Linux, in the trial boot, after every required health check passed. u-boot accepts at the next boot. */
export function confirmTrial(): EnvUpdate {
  return { [ENV.state]: SwitchState.Confirmed };
}

/** Linux, in the trial boot, when a required health check failed: the next boot is the fallback. */
export function rejectTrial(snapshot: string): EnvUpdate {
  return {
    [ENV.trial]: '',
    [ENV.state]: SwitchState.Idle,
    [ENV.result]: TrialOutcome.HealthRejected,
    [ENV.resultSnapshot]: snapshot,
  };
}

/** The variables as read back from the env. */
export interface SwitchEnv {
  current: string;
  previous: string;
  trial: string;
  state: SwitchState;
  /** '' when the env holds no result or one that is not a TrialOutcome */
  result: TrialOutcome | '';
  resultSnapshot: string;
}

export function readSwitchEnv(vars: Record<string, string | undefined>): SwitchEnv {
  const state = vars[ENV.state] ?? '';
  const result = vars[ENV.result] ?? '';
  return {
    current: vars[ENV.current] ?? '',
    previous: vars[ENV.previous] ?? '',
    trial: vars[ENV.trial] ?? '',
    state: (Object.values(SwitchState) as string[]).includes(state) ? (state as SwitchState) : SwitchState.Idle,
    result: isTrialOutcome(result) ? result : '',
    resultSnapshot: vars[ENV.resultSnapshot] ?? '',
  };
}

/**
 * What u-boot does at boot, as a pure function: the reference model for uboot/boot.cmd, used by the
 * unit tests and the virtual device scenarios to predict the env after each boot.
 * `kernelLoads(id)` says whether the snapshot's kernel and initrd load.
 */
export function bootloaderDecision(
  env: SwitchEnv,
  kernelLoads: (snapshot: string) => boolean,
): { boot: string; trial: boolean; write: EnvUpdate | null } {
  const kernelLoadFailed = (trial: string) => ({
    boot: env.current,
    trial: false,
    write: {
      [ENV.trial]: '',
      [ENV.state]: SwitchState.Idle,
      [ENV.result]: TrialOutcome.KernelLoadFailed,
      [ENV.resultSnapshot]: trial,
    },
  });
  if (env.state === SwitchState.Requested && env.trial) {
    if (!kernelLoads(env.trial)) return kernelLoadFailed(env.trial);
    return { boot: env.trial, trial: true, write: { [ENV.state]: SwitchState.Trying } };
  }
  if (env.state === SwitchState.Trying && env.trial) {
    return {
      boot: env.current,
      trial: false,
      write: {
        [ENV.trial]: '',
        [ENV.state]: SwitchState.Idle,
        [ENV.result]: TrialOutcome.BootloaderFallback,
        [ENV.resultSnapshot]: env.trial,
      },
    };
  }
  if (env.state === SwitchState.Confirmed && env.trial) {
    // a confirmed snapshot whose kernel no longer loads (storage went bad since) is not accepted
    if (!kernelLoads(env.trial)) return kernelLoadFailed(env.trial);
    return {
      boot: env.trial,
      trial: false,
      write: {
        [ENV.previous]: env.current,
        [ENV.current]: env.trial,
        [ENV.trial]: '',
        [ENV.state]: SwitchState.Idle,
        [ENV.result]: TrialOutcome.Accepted,
        [ENV.resultSnapshot]: env.trial,
      },
    };
  }
  return { boot: env.current, trial: false, write: null };
}
