import { RELEASE_NAME_PATTERN, RELEASE_VERSION_PATTERN } from '@cowroot/protocol';
import { ReleaseError, ReleaseErrorCode } from './release-error';

/** A release as the operator names it (`name@version`) and where its snapshot lives in the pool. */
export class ReleaseRefArg {
  constructor(
    readonly name: string,
    readonly version: string,
  ) {
    if (!RELEASE_NAME_PATTERN.test(name) || name.includes('..')) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `invalid release name "${name}" (letters, digits, . _ -; at most 64)`,
      );
    }
    if (!RELEASE_VERSION_PATTERN.test(version) || version.includes('..')) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `invalid release version "${version}" (letters, digits, . + _ -; at most 64)`,
      );
    }
  }

  /** Parses `name@version`. */
  static parse(text: string): ReleaseRefArg {
    const at = text.lastIndexOf('@');
    if (at <= 0 || at === text.length - 1) {
      throw new ReleaseError(
        ReleaseErrorCode.InvalidArgument,
        `"${text}" is not a release reference: write name@version, e.g. demo@1.0`,
      );
    }
    return new ReleaseRefArg(text.slice(0, at), text.slice(at + 1));
  }

  /** Subvolume name under `<pool>/releases/`. */
  get snapshotName(): string {
    return `${this.name}-${this.version}`;
  }

  /** Stem for artifact file names: the manifest's file pattern has no '+', which versions may contain. */
  get fileStem(): string {
    return `${this.name}-${this.version}`.replace(/\+/g, '_');
  }

  equals(other: ReleaseRefArg): boolean {
    return this.name === other.name && this.version === other.version;
  }

  toString(): string {
    return `${this.name}@${this.version}`;
  }
}
