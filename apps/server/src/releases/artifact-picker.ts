import { ArtifactKind, SnapshotInfo } from '@cowroot/protocol';

/** What the picker needs to know about an artifact (ReleaseArtifact satisfies it). */
export interface PickableArtifact {
  kind: ArtifactKind;
  /** received_uuid a device must hold for an incremental stream to apply; null for a full stream */
  parentSnapshotUuid: string | null;
  size: number;
  /** delta kind: the format its manifest names; null or absent when the manifest does not say */
  deltaFormat?: number | null;
}

/**
 * The delta formats assumed for a device whose agent never listed its own (older than the state report's
 * deltaFormats): format 1 only, because every agent that rebuilds deltas reads it, while agents of the
 * first delta release read nothing else and report the same agentVersion as later ones (0.1.0).
 */
export const UNREPORTED_DELTA_FORMATS: readonly number[] = [1];

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
 *
 * Delta formats (docs/rollouts.md "Dispatch"): a delta whose format is known is usable only by a device
 * whose reported `deltaFormats` include it; a device that never reported them is taken to read
 * UNREPORTED_DELTA_FORMATS (format 1). A delta of unknown format (a manifest without deltaFormat) is
 * usable as before. A delta the device cannot read is skipped, so the plain incremental or the full
 * stream is chosen exactly as if it were not there.
 */
export class ArtifactPicker {
  pick<T extends PickableArtifact>(
    release: PickableRelease,
    artifacts: readonly T[],
    snapshots: readonly DeviceSnapshot[],
    /** the formats the device's agent reported, null when it never did */
    deltaFormats: readonly number[] | null,
  ): ArtifactChoice<T> {
    const readable = deltaFormats ?? UNREPORTED_DELTA_FORMATS;
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
        if (!canRead(artifact, readable)) continue;
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

/** Whether a device reading `formats` can rebuild the artifact: any non-delta, and a delta of unknown format. */
function canRead(artifact: PickableArtifact, formats: readonly number[]): boolean {
  if (artifact.kind !== ArtifactKind.Delta || artifact.deltaFormat === null || artifact.deltaFormat === undefined)
    return true;
  return formats.includes(artifact.deltaFormat);
}
