import {
  ArtifactKind,
  ArtifactManifest,
  RELEASE_INDEX_FILE,
  RELEASE_INDEX_FORMAT,
  ReleaseIndex,
} from '@cowroot/protocol';
import { isSnapshotId } from '@cowroot/protocol';
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ReleaseError, ReleaseErrorCode } from '../release-error';
import { ReleaseVerifier } from '../release-verifier.service';

/** The full stream of a built release, verified as a device verifies an offer. */
export interface FactoryRelease {
  dir: string;
  manifest: ArtifactManifest;
  /** the verified stream file */
  stream: string;
  /** snapshots/<id> on the device: `<name>-<version>`, the agent's own default id (apps/agent install-job) */
  snapshotId: string;
}

/**
 * Reads `<dir>/release.json` (the release tool's output, or `cowroot-release sign`'s) and verifies its full
 * stream with the pinned public key: the ed25519 signature over the exact manifest bytes, the manifest's
 * format (both with @cowroot/protocol's verifyManifestSignature and parseManifest, the agent's own
 * checks, docs/agent.md §4.1), then the stream's size and sha256. Only then may it reach btrfs receive.
 */
export async function loadFactoryRelease(dir: string, publicKey: string): Promise<FactoryRelease> {
  const absolute = resolve(dir);
  let index: ReleaseIndex;
  try {
    index = JSON.parse(await readFile(join(absolute, RELEASE_INDEX_FILE), 'utf8')) as ReleaseIndex;
  } catch (error) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `${join(absolute, RELEASE_INDEX_FILE)} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); pass the --out directory of cowroot-release build or sign as --release`,
    );
  }
  if (index.format !== RELEASE_INDEX_FORMAT || !Array.isArray(index.artifacts)) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `${join(absolute, RELEASE_INDEX_FILE)} is not a ${RELEASE_INDEX_FORMAT} index`,
    );
  }
  const full = index.artifacts.find((artifact) => artifact.kind === ArtifactKind.Full);
  if (!full) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `release ${index.name}@${index.version} in ${absolute} has no full stream; a factory image needs one`,
    );
  }
  // names from the unsigned index must stay in the release directory
  const inDir = (name: string) => join(absolute, basename(String(name)));
  const stream = inDir(full.file);
  const manifest = await new ReleaseVerifier().verify({
    manifest: inDir(full.manifest),
    signature: inDir(full.signature),
    publicKey,
    artifact: stream,
  });
  if (manifest.kind !== ArtifactKind.Full) {
    throw new ReleaseError(
      ReleaseErrorCode.VerificationFailed,
      `manifest ${inDir(full.manifest)} is not a full stream`,
    );
  }
  const snapshotId = `${manifest.release.name}-${manifest.release.version}`;
  if (!isSnapshotId(snapshotId)) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `release ${manifest.release.name}@${manifest.release.version} gives no valid snapshot id (${snapshotId}: letters, digits, . _ -)`,
    );
  }
  return { dir: absolute, manifest, stream, snapshotId };
}
