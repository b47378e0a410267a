/**
 * Every `error.code` the REST API answers with (docs/api.md §Error codes). Each maps to its HTTP status
 * and meaning in one place, ERROR_CODES (error-codes.ts). The generic members are what Nest's own errors
 * (validation, unknown routes, guards) become; everything the domain refuses has a code of its own, so
 * a client can act on it without parsing the message. Never rename a value: clients match on it.
 */
export enum DomainErrorCode {
  // generic
  Invalid = 'INVALID',
  Unauthorized = 'UNAUTHORIZED',
  Forbidden = 'FORBIDDEN',
  NotFound = 'NOT_FOUND',
  Conflict = 'CONFLICT',
  InvalidState = 'INVALID_STATE',
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  Internal = 'INTERNAL',
  NotReady = 'NOT_READY',
  InvalidCursor = 'INVALID_CURSOR',
  UnsupportedContentType = 'UNSUPPORTED_CONTENT_TYPE',
  // devices and their commands
  DeviceNotFound = 'DEVICE_NOT_FOUND',
  DeviceExists = 'DEVICE_EXISTS',
  DeviceDecommissioned = 'DEVICE_DECOMMISSIONED',
  DeviceListInvalid = 'DEVICE_LIST_INVALID',
  DeviceListTooLarge = 'DEVICE_LIST_TOO_LARGE',
  CommandNotFound = 'COMMAND_NOT_FOUND',
  CommandInvalid = 'COMMAND_INVALID',
  // releases, artifacts, uploads
  ReleaseNotFound = 'RELEASE_NOT_FOUND',
  ReleaseExists = 'RELEASE_EXISTS',
  ReleaseInUse = 'RELEASE_IN_USE',
  ReleaseHasNoArtifacts = 'RELEASE_HAS_NO_ARTIFACTS',
  ArtifactNotFound = 'ARTIFACT_NOT_FOUND',
  ArtifactConflict = 'ARTIFACT_CONFLICT',
  ArtifactTooLarge = 'ARTIFACT_TOO_LARGE',
  ParentReleaseMissing = 'PARENT_RELEASE_MISSING',
  SnapshotUuidMismatch = 'SNAPSHOT_UUID_MISMATCH',
  ManifestInvalid = 'MANIFEST_INVALID',
  SignatureNotVerified = 'SIGNATURE_NOT_VERIFIED',
  UploadInvalid = 'UPLOAD_INVALID',
  UploadNotFound = 'UPLOAD_NOT_FOUND',
  UploadBusy = 'UPLOAD_BUSY',
  UploadOffsetMismatch = 'UPLOAD_OFFSET_MISMATCH',
  UploadSizeMismatch = 'UPLOAD_SIZE_MISMATCH',
  UploadChecksumMismatch = 'UPLOAD_CHECKSUM_MISMATCH',
  StorageFull = 'STORAGE_FULL',
  RangeNotSatisfiable = 'RANGE_NOT_SATISFIABLE',
  // signing keys and tokens
  SigningKeyInvalid = 'SIGNING_KEY_INVALID',
  SigningKeyExists = 'SIGNING_KEY_EXISTS',
  SigningKeyNotFound = 'SIGNING_KEY_NOT_FOUND',
  TokenNotFound = 'TOKEN_NOT_FOUND',
  LastAdminToken = 'LAST_ADMIN_TOKEN',
  // rollouts and rollbacks
  RolloutNotFound = 'ROLLOUT_NOT_FOUND',
  RolloutSelectorEmpty = 'ROLLOUT_SELECTOR_EMPTY',
  RolloutWavesInvalid = 'ROLLOUT_WAVES_INVALID',
  RolloutNotRunning = 'ROLLOUT_NOT_RUNNING',
  RolloutNotPaused = 'ROLLOUT_NOT_PAUSED',
  RolloutFinished = 'ROLLOUT_FINISHED',
  NoWaveAwaitingApproval = 'NO_WAVE_AWAITING_APPROVAL',
  NoFailedDevices = 'NO_FAILED_DEVICES',
  ExecutionNotFound = 'EXECUTION_NOT_FOUND',
  RollbackNotFound = 'ROLLBACK_NOT_FOUND',
  RollbackTargetInvalid = 'ROLLBACK_TARGET_INVALID',
  TooManyRequests = 'TOO_MANY_REQUESTS',
  CsrfCheckFailed = 'CSRF_CHECK_FAILED',
}

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}
