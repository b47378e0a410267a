import { DomainErrorCode as C } from './domain-error';

export interface ErrorCodeInfo {
  status: number;
  /** what happened and what a client can do about it (docs/api.md §Error codes is held to this) */
  meaning: string;
}

/**
 * The one exhaustive map of error codes to HTTP statuses (a Record over the enum: a code without an
 * entry does not compile). 404 not found, 409 conflict with what exists, 422 wrong state for the action,
 * 400 a malformed request, 403 only for authorization (docs/api.md §Error codes).
 */
export const ERROR_CODES: Record<C, ErrorCodeInfo> = {
  [C.Invalid]: { status: 400, meaning: 'the request is malformed; details.problems lists every validation failure' },
  [C.Unauthorized]: { status: 401, meaning: 'no credential, or an unknown or revoked token / device credential' },
  [C.Forbidden]: { status: 403, meaning: "the token's role is too weak for this action" },
  [C.NotFound]: { status: 404, meaning: 'no such route (the domain answers a specific *_NOT_FOUND)' },
  [C.Conflict]: {
    status: 409,
    meaning: 'conflicts with what exists (generic: routes answer a specific code where there is one)',
  },
  [C.InvalidState]: {
    status: 422,
    meaning: 'not possible in the current state (generic: routes answer a specific code where there is one)',
  },
  [C.PayloadTooLarge]: { status: 413, meaning: 'the request body is larger than the server accepts' },
  [C.TooManyRequests]: {
    status: 429,
    meaning: 'too many failed logins from this source or for this identity; see Retry-After',
  },
  [C.CsrfCheckFailed]: {
    status: 403,
    meaning: 'a cookie-session request that changes state lacked X-CSRF-Token or came from another Origin',
  },
  [C.Internal]: { status: 500, meaning: 'unexpected server error; quote the correlationId' },
  [C.NotReady]: { status: 503, meaning: 'not ready: details says which dependency (database, mqtt) is down' },
  [C.InvalidCursor]: { status: 400, meaning: 'the cursor is not a nextCursor of this list; start again without it' },
  [C.UnsupportedContentType]: { status: 400, meaning: 'send the body with a Content-Type this route accepts' },
  [C.DeviceNotFound]: { status: 404, meaning: 'no (active) device with this id' },
  [C.DeviceExists]: { status: 409, meaning: 'a device with this id is already provisioned' },
  [C.DeviceDecommissioned]: { status: 409, meaning: 'the device is decommissioned: it takes no commands' },
  [C.DeviceListInvalid]: { status: 422, meaning: 'rows of the bulk list are invalid; details.rows lists each' },
  [C.DeviceListTooLarge]: { status: 413, meaning: 'the bulk device list is too large; split it' },
  [C.CommandNotFound]: { status: 404, meaning: 'no such command of this device' },
  [C.CommandInvalid]: { status: 400, meaning: 'the command does not satisfy the protocol' },
  [C.ReleaseNotFound]: { status: 404, meaning: 'no release with this name and version' },
  [C.ReleaseExists]: { status: 409, meaning: 'a release with this name and version exists' },
  [C.ReleaseInUse]: {
    status: 409,
    meaning: 'a device or unfinished rollout uses the release; details.usages lists them',
  },
  [C.ReleaseHasNoArtifacts]: { status: 422, meaning: 'the release has no artifact yet: upload one first' },
  [C.ArtifactNotFound]: { status: 404, meaning: 'the release has no artifact with this file name' },
  [C.ArtifactConflict]: {
    status: 409,
    meaning: 'another artifact is in the way (other manifest, second full stream, same parent)',
  },
  [C.ArtifactTooLarge]: { status: 413, meaning: "the manifest's size exceeds MAX_ARTIFACT_BYTES" },
  [C.ParentReleaseMissing]: { status: 422, meaning: "an incremental's parent release or its artifact is missing" },
  [C.SnapshotUuidMismatch]: { status: 422, meaning: "the manifest's snapshotUuid differs from the release's" },
  [C.ManifestInvalid]: {
    status: 400,
    meaning: 'X-Cowroot-Manifest / X-Cowroot-Signature missing, not base64, invalid, or for another URL',
  },
  [C.SignatureNotVerified]: { status: 422, meaning: 'no active registered signing key verifies the manifest' },
  [C.UploadInvalid]: { status: 400, meaning: 'Content-Length / Content-Range disagree, or the body was cut off' },
  [C.UploadNotFound]: { status: 404, meaning: 'no resumable upload of this file is in progress' },
  [C.UploadBusy]: { status: 409, meaning: 'another chunk of this file is being received; retry after it' },
  [C.UploadOffsetMismatch]: { status: 409, meaning: 'the upload continues at details.offset; send from there' },
  [C.UploadSizeMismatch]: { status: 422, meaning: "the stream is shorter or longer than the manifest's size" },
  [C.UploadChecksumMismatch]: { status: 422, meaning: "the stream's sha256 differs from the manifest's" },
  [C.StorageFull]: { status: 507, meaning: 'artifact storage is full; free space in STORAGE_DIR' },
  [C.RangeNotSatisfiable]: { status: 416, meaning: 'the Range lies outside the artifact' },
  [C.SigningKeyInvalid]: { status: 400, meaning: 'publicKeyPem is not an ed25519 PEM public key' },
  [C.SigningKeyExists]: { status: 409, meaning: 'a signing key with this name or public key is registered' },
  [C.SigningKeyNotFound]: { status: 404, meaning: 'no signing key with this id' },
  [C.TokenNotFound]: { status: 404, meaning: 'no API token with this id' },
  [C.LastAdminToken]: { status: 409, meaning: 'the last active admin token cannot be revoked' },
  [C.RolloutNotFound]: { status: 404, meaning: 'no rollout with this id' },
  [C.RolloutSelectorEmpty]: {
    status: 400,
    meaning: 'the selector targets nothing: give tags, deviceIds, a filter or all',
  },
  [C.RolloutWavesInvalid]: {
    status: 400,
    meaning: 'a wave needs exactly one of count or percent; a continuous rollout ends at 100%',
  },
  [C.RolloutNotRunning]: {
    status: 422,
    meaning: 'the action needs a running rollout (details.status says what it is)',
  },
  [C.RolloutNotPaused]: { status: 422, meaning: 'only a paused rollout can be resumed (details.status)' },
  [C.RolloutFinished]: { status: 422, meaning: 'the rollout is completed, canceled or aborted (details.status)' },
  [C.NoWaveAwaitingApproval]: { status: 422, meaning: 'no wave of the rollout needs an approval' },
  [C.NoFailedDevices]: { status: 422, meaning: 'the rollout has no failed devices to retry' },
  [C.ExecutionNotFound]: { status: 404, meaning: 'the device is not part of this rollout' },
  [C.RollbackNotFound]: { status: 404, meaning: 'no rollback with this id' },
  [C.RollbackTargetInvalid]: { status: 400, meaning: 'give exactly one of deviceId, tag or rolloutId' },
};

/** The code of an error Nest raised itself (validation, unknown route, body parser), by its status. */
export function codeForHttpStatus(status: number): C {
  switch (status) {
    case 401:
      return C.Unauthorized;
    case 403:
      return C.Forbidden;
    case 404:
      return C.NotFound;
    case 409:
      return C.Conflict;
    case 413:
      return C.PayloadTooLarge;
    case 416:
      return C.RangeNotSatisfiable;
    case 429:
      return C.TooManyRequests;
    case 422:
      return C.InvalidState;
    case 503:
      return C.NotReady;
    case 507:
      return C.StorageFull;
    default:
      return status >= 500 ? C.Internal : C.Invalid;
  }
}
