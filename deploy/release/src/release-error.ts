import { CommandError, DeviceError } from '@cowroot/device';

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

/** Debian package that provides each command the tool runs, for "not found" errors. */
const PACKAGE_OF: Record<string, string> = {
  btrfs: 'btrfs-progs',
  mkimage: 'u-boot-tools',
  zstd: 'zstd',
  rsync: 'rsync',
};

function causesOf(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let current = error; current instanceof Error && chain.length < 8; current = current.cause) chain.push(current);
  return chain;
}

/**
 * A failure as the ReleaseError the CLI prints as its one line: its own errors as they are; a command that
 * failed (run directly, or inside a btrfs call of the device core) with its command line and stderr tail; a
 * command that is not installed, wherever it sat in a pipe, with the Debian package that provides it.
 * Null for anything else (a bug: the CLI says "unexpected failure").
 */
export function asReleaseError(error: unknown): ReleaseError | null {
  if (error instanceof ReleaseError) return error;
  const chain = causesOf(error);
  const missing = chain.find(
    (link): link is CommandError =>
      link instanceof CommandError &&
      link.failure === 'spawn' &&
      (link.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT',
  );
  if (missing) {
    const pkg = PACKAGE_OF[missing.command];
    return new ReleaseError(
      ReleaseErrorCode.CommandMissing,
      `command ${missing.command} not found${pkg ? ` (install the Debian package ${pkg})` : ''}`,
    );
  }
  if (error instanceof DeviceError || error instanceof CommandError) {
    return new ReleaseError(ReleaseErrorCode.CommandFailed, error.message);
  }
  return null;
}
