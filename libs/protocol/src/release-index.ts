import { ArtifactKind } from './manifest';

/**
 * `release.json`: written by the release build tool next to a release's streams, read by the operator CLI
 * when it publishes them (docs/release-tool.md). It is a convenience index and is not signed: every
 * artifact's own manifest is, and the server and devices trust only those.
 */
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
