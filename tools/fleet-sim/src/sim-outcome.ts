/** What a simulated device does with an update it is told to install or switch to. */
export enum SimOutcome {
  /** boots the trial, its health checks pass, it confirms */
  Confirm = 'confirm',
  /** boots the trial, a required health check fails, it rejects and reboots into the fallback */
  HealthReject = 'health-reject',
  /** the trial never confirms (kernel hang, watchdog): u-boot boots the fallback */
  BootloaderFallback = 'bootloader-fallback',
  /** reboots into the trial and is never heard of again */
  Hang = 'hang',
  /** the download fails: nothing changes on the device */
  DownloadFail = 'download-fail',
}

export const SIM_OUTCOMES = Object.values(SimOutcome);
