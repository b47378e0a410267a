import type { DeltaFormat } from '@cowroot/device';
import { ArtifactKind, ArtifactManifest, MANIFEST_FORMAT, parseManifest } from '@cowroot/protocol';
import { ReleaseError, ReleaseErrorCode } from './release-error';
import { ReleaseRefArg } from './release-ref';

export interface ManifestInput {
  release: ReleaseRefArg;
  file: string;
  size: number;
  sha256: string;
  /** stream identity of the release snapshot (what becomes received_uuid on a device) */
  snapshotUuid: string;
  parent: { release: ReleaseRefArg; snapshotUuid: string } | null;
  createdAt: Date;
  description?: string;
  security?: ManifestSecurity;
  /** a delta artifact: the plain stream it rebuilds to */
  reconstructs?: { size: number; sha256: string };
  /** a delta artifact: the format it was written in, so the server offers it only to devices that read it */
  deltaFormat?: DeltaFormat;
}

/** Downgrade protection (docs/release-tool.md): the release's security version and rollback allowance. */
export interface ManifestSecurity {
  securityVersion?: number;
  allowRollbackFrom?: number;
}

/**
 * The manifest bytes for one artifact, in the protocol's format (libs/protocol/src/manifest.ts). The exact
 * bytes returned are what gets signed and published; they are parsed back with the protocol's own parser
 * so the build fails here rather than on a device.
 */
export function buildManifestBytes(input: ManifestInput): Buffer {
  const manifest: ArtifactManifest = {
    format: MANIFEST_FORMAT,
    release: { name: input.release.name, version: input.release.version },
    kind: input.reconstructs ? ArtifactKind.Delta : input.parent ? ArtifactKind.Incremental : ArtifactKind.Full,
    file: input.file,
    size: input.size,
    sha256: input.sha256,
    compression: 'zstd',
    snapshotUuid: input.snapshotUuid,
    parent: input.parent
      ? {
          release: { name: input.parent.release.name, version: input.parent.release.version },
          snapshotUuid: input.parent.snapshotUuid,
        }
      : null,
    createdAt: input.createdAt.toISOString(),
    ...(input.description ? { description: input.description } : {}),
    ...(input.security?.securityVersion !== undefined ? { securityVersion: input.security.securityVersion } : {}),
    ...(input.security?.allowRollbackFrom !== undefined ? { allowRollbackFrom: input.security.allowRollbackFrom } : {}),
    ...(input.reconstructs ? { reconstructs: input.reconstructs } : {}),
    ...(input.deltaFormat !== undefined ? { deltaFormat: input.deltaFormat } : {}),
  };
  const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
  const parsed = parseManifest(bytes);
  if (!parsed.ok) {
    throw new ReleaseError(
      ReleaseErrorCode.InvalidArgument,
      `manifest for ${input.file} would be rejected by devices: ${parsed.message}`,
    );
  }
  return bytes;
}
