/**
 * How a trial ended (docs/device.md §3): the value of `cowroot_result` in the u-boot env, written by
 * u-boot (accepted, bootloader-fallback, kernel-load-failed) or by Linux (health-rejected), reported in the
 * device state as `lastTrialResult.outcome`. The one definition used by libs/device, uboot/boot.cmd's
 * definition test, the agent and the server.
 */
export enum TrialOutcome {
  Accepted = 'accepted',
  BootloaderFallback = 'bootloader-fallback',
  HealthRejected = 'health-rejected',
  KernelLoadFailed = 'kernel-load-failed',
}

/** Who undid a trial, as `rolled-back` events say it (docs/protocol.md §5.2, `rollback.by`). */
export enum RollbackCause {
  /** the trial booted but a required health check failed */
  HealthCheck = 'health-check',
  /** the trial boot never confirmed (hang, crash, power cut); u-boot found `trying` */
  Bootloader = 'bootloader',
  /** u-boot could not load the trial's kernel or initrd */
  KernelLoad = 'kernel-load',
}

/** The cause a rolled-back trial is reported with; null for an accepted trial (nothing was rolled back). */
export const ROLLBACK_CAUSE: Readonly<Record<TrialOutcome, RollbackCause | null>> = {
  [TrialOutcome.Accepted]: null,
  [TrialOutcome.HealthRejected]: RollbackCause.HealthCheck,
  [TrialOutcome.BootloaderFallback]: RollbackCause.Bootloader,
  [TrialOutcome.KernelLoadFailed]: RollbackCause.KernelLoad,
};

export function isTrialOutcome(value: string): value is TrialOutcome {
  return (Object.values(TrialOutcome) as string[]).includes(value);
}
