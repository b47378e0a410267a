import { ArtifactKind } from '@cowroot/protocol';

/** `release.json`: what the operator CLI publishes to the server, pointing at each signed artifact. */
export const RELEASE_INDEX_FORMAT = 'cowroot-release/1';
export const RELEASE_INDEX_FILE = 'release.json';

export interface ReleaseIndexArtifact {
  kind: ArtifactKind;
  /** the compressed send stream */
  file: string;
  /** `<file>.manifest.json`: the exact signed bytes */
  manifest: string;
  /** `<file>.manifest.sig`: base64 ed25519 signature of the manifest bytes */
  signature: string;
  size: number;
  sha256: string;
  /** parent release of an incremental stream, null for the full one */
  parent: { name: string; version: string } | null;
}

export interface ReleaseIndex {
  format: typeof RELEASE_INDEX_FORMAT;
  name: string;
  version: string;
  description: string | null;
  snapshotUuid: string;
  createdAt: string;
  artifacts: ReleaseIndexArtifact[];
}
