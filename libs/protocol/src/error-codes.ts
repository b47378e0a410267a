/**
 * Error codes shared by server and agent (docs/protocol.md §7). The agent puts them in `failed` job
 * events; the server uses them for rejected MQTT messages and maps its own domain errors to HTTP.
 */
export enum ErrorCode {
  // message level
  MalformedMessage = 'MALFORMED_MESSAGE',
  MessageTooLarge = 'MESSAGE_TOO_LARGE',
  UnsupportedProtocolVersion = 'UNSUPPORTED_PROTOCOL_VERSION',
  UnknownCommand = 'UNKNOWN_COMMAND',
  // install path
  DownloadFailed = 'DOWNLOAD_FAILED',
  SignatureInvalid = 'SIGNATURE_INVALID',
  Sha256Mismatch = 'SHA256_MISMATCH',
  SizeMismatch = 'SIZE_MISMATCH',
  ParentMissing = 'PARENT_MISSING',
  ReceiveFailed = 'RECEIVE_FAILED',
  DiskFull = 'DISK_FULL',
  /** an artifact URL outside the server origin the device is configured with (docs/agent.md §4.1) */
  UntrustedUrl = 'UNTRUSTED_URL',
  /** a release below the device's security version floor, without a signed rollback allowance */
  DowngradeRefused = 'DOWNGRADE_REFUSED',
  /** delta artifact (docs/agent.md §4.3): malformed, truncated, or a patch that does not decode */
  DeltaCorrupt = 'DELTA_CORRUPT',
  /** delta artifact: a predecessor file in the parent snapshot is not the one the patch was made against */
  DeltaBaseMismatch = 'DELTA_BASE_MISMATCH',
  /** delta artifact: the rebuilt plain stream's size or sha256 differs from the signed manifest's */
  DeltaMismatch = 'DELTA_MISMATCH',
  // snapshot and switch
  SnapshotNotFound = 'SNAPSHOT_NOT_FOUND',
  SnapshotInUse = 'SNAPSHOT_IN_USE',
  TrialPending = 'TRIAL_PENDING',
  HealthCheckFailed = 'HEALTH_CHECK_FAILED',
  BootloaderFallback = 'BOOTLOADER_FALLBACK',
  EnvWriteFailed = 'ENV_WRITE_FAILED',
  /** the action does not fit the device's switch state (confirm outside a trial boot, a writable snapshot) */
  InvalidState = 'INVALID_STATE',
  // job control
  Canceled = 'CANCELED',
  Busy = 'BUSY',
  /** the device's config disables this command (docs/agent.md §2) */
  CommandDisabled = 'COMMAND_DISABLED',
  Internal = 'INTERNAL',
}
