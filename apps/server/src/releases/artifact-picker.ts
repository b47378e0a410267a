import { ArtifactKind, SnapshotInfo } from '@cowroot/protocol';

/** What the picker needs to know about an artifact (ReleaseArtifact satisfies it). */
export interface PickableArtifact {
  kind: ArtifactKind;
  /** received_uuid a device must hold for an incremental stream to apply; null for a full stream */
  parentSnapshotUuid: string | null;
  size: number;
}

/** What the picker needs to know about the release being offered. */
export interface PickableRelease {
  /** the release's snapshot uuid on the build host = received_uuid of a snapshot made from it */
  snapshotUuid: string | null;
}

export type DeviceSnapshot = Pick<SnapshotInfo, 'id' | 'receivedUuid' | 'readOnly'>;

export type ArtifactChoice<T extends PickableArtifact> =
  /** the device already holds a snapshot of this release: switch to it, nothing to download */
  | { type: 'held'; snapshotId: string }
  /** a delta artifact (binary patches) whose parent the device holds: the fewest bytes (issue 14) */
  | { type: 'delta'; artifact: T; parentSnapshotId: string }
  /** an incremental stream whose parent the device holds (as `parentSnapshotId`) */
  | { type: 'incremental'; artifact: T; parentSnapshotId: string }
  | { type: 'full'; artifact: T }
  /** no artifact the device can apply (no full stream uploaded and no usable parent) */
  | { type: 'none' };

/**
 * Delta planning for one device (docs/rollouts.md "Dispatch"): btrfs receive finds the parent of an incremental stream by
 * received_uuid, so an incremental applies only when the device holds a read-only snapshot whose
 * received_uuid is the artifact's parent snapshot uuid. Snapshots committed from the workspace have no
 * received_uuid and never match; such a device gets the full stream. A delta artifact whose
 * parent the device holds comes first, then a plain incremental, then the full stream; among several
 * usable artifacts of one kind the smallest wins.
 */
export class ArtifactPicker {
  pick<T extends PickableArtifact>(
    release: PickableRelease,
    artifacts: readonly T[],
    snapshots: readonly DeviceSnapshot[],
  ): ArtifactChoice<T> {
    const receivedBy = new Map<string, string>();
    for (const snapshot of snapshots) {
      if (snapshot.receivedUuid && snapshot.readOnly && !receivedBy.has(snapshot.receivedUuid)) {
        receivedBy.set(snapshot.receivedUuid, snapshot.id);
      }
    }

    const held = release.snapshotUuid === null ? undefined : receivedBy.get(release.snapshotUuid);
    if (held !== undefined) return { type: 'held', snapshotId: held };

    for (const kind of [ArtifactKind.Delta, ArtifactKind.Incremental] as const) {
      let best: { artifact: T; parentSnapshotId: string } | null = null;
      for (const artifact of artifacts) {
        if (artifact.kind !== kind || artifact.parentSnapshotUuid === null) continue;
        const parentSnapshotId = receivedBy.get(artifact.parentSnapshotUuid);
        if (parentSnapshotId !== undefined && (best === null || artifact.size < best.artifact.size)) {
          best = { artifact, parentSnapshotId };
        }
      }
      if (best) return { type: kind, ...best };
    }

    const full = artifacts.find((artifact) => artifact.kind === ArtifactKind.Full);
    return full ? { type: 'full', artifact: full } : { type: 'none' };
  }
}
