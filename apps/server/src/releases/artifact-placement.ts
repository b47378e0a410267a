import { ArtifactKind, ArtifactManifest } from '@cowroot/protocol';
import { EntityManager } from 'typeorm';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { ReleaseArtifact } from './release-artifact.entity';
import { Release } from './release.entity';

/**
 * Rules for what a release may hold (run again under the release lock at commit):
 * - one full stream; any number of incrementals and deltas, one of each per parent snapshot;
 * - all artifacts produce the same snapshot (the release's snapshot uuid);
 * - an incremental's parent release must exist and its snapshot uuid must be the manifest's
 *   parent.snapshotUuid, i.e. the parent must have at least one artifact uploaded first.
 */
export async function checkArtifactPlacement(
  release: Release,
  manifest: ArtifactManifest,
  manager: EntityManager,
): Promise<void> {
  if (release.snapshotUuid !== null && release.snapshotUuid !== manifest.snapshotUuid) {
    throw new DomainError(
      DomainErrorCode.SnapshotUuidMismatch,
      `the manifest's snapshotUuid ${manifest.snapshotUuid} differs from the release's ${release.snapshotUuid}: all artifacts of a release must produce the same snapshot`,
    );
  }
  if (manifest.kind === ArtifactKind.Full) {
    const full = await manager.findOne(ReleaseArtifact, {
      where: { releaseId: release.id, kind: ArtifactKind.Full },
    });
    if (full)
      throw new DomainError(
        DomainErrorCode.ArtifactConflict,
        `release ${release.name} ${release.version} already has a full stream (${full.file})`,
      );
    return;
  }
  const parent = manifest.parent!;
  const parentRelease = await manager.findOne(Release, {
    where: { name: parent.release.name, version: parent.release.version },
  });
  if (!parentRelease || parentRelease.id === release.id) {
    throw new DomainError(
      DomainErrorCode.ParentReleaseMissing,
      `parent release ${parent.release.name} ${parent.release.version} does not exist`,
    );
  }
  if (parentRelease.snapshotUuid !== parent.snapshotUuid) {
    throw new DomainError(
      DomainErrorCode.ParentReleaseMissing,
      parentRelease.snapshotUuid === null
        ? `parent release ${parent.release.name} ${parent.release.version} has no artifact yet: upload its full stream first`
        : `parent snapshotUuid ${parent.snapshotUuid} is not the snapshot of release ${parent.release.name} ${parent.release.version} (${parentRelease.snapshotUuid})`,
    );
  }
  // one plain incremental and one delta artifact per parent
  const sibling = await manager.findOne(ReleaseArtifact, {
    where: { releaseId: release.id, parentSnapshotUuid: parent.snapshotUuid, kind: manifest.kind },
  });
  if (sibling) {
    throw new DomainError(
      DomainErrorCode.ArtifactConflict,
      `release ${release.name} ${release.version} already has ${manifest.kind === ArtifactKind.Delta ? 'a delta' : 'an incremental'} from that parent (${sibling.file})`,
    );
  }
}
