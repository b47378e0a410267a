/** Why a release command failed; the CLI prints the message as one line and exits non-zero. */
export enum ReleaseErrorCode {
  InvalidArgument = 'invalid-argument',
  NoKernel = 'no-kernel',
  NoInitrd = 'no-initrd',
  NotAncestor = 'not-ancestor',
  UnknownRelease = 'unknown-release',
  KeyMissing = 'key-missing',
  KeyUnreadable = 'key-unreadable',
  KeyInvalid = 'key-invalid',
  PoolNotBtrfs = 'pool-not-btrfs',
  ReleaseExists = 'release-exists',
  OutputExists = 'output-exists',
  CommandMissing = 'command-missing',
  CommandFailed = 'command-failed',
  VerificationFailed = 'verification-failed',
}

export class ReleaseError extends Error {
  constructor(
    readonly code: ReleaseErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ReleaseError';
  }
}
