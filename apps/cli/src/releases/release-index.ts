import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  ArtifactKind,
  RELEASE_INDEX_FILE,
  RELEASE_INDEX_FORMAT,
  ReleaseIndex,
  ReleaseIndexArtifact,
} from '@cowroot/protocol';
import { CliError } from '../cli-error';

/** An artifact of `release.json` (libs/protocol/src/release-index.ts), as the CLI uploads it. */
export type IndexedArtifact = ReleaseIndexArtifact;

/** A file of the release directory: a bare name, never a path that could leave the directory. */
function plainName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '' || value !== basename(value) || value === '.' || value === '..') {
    throw new CliError(
      `${RELEASE_INDEX_FILE}: ${what} must be a file name inside the release directory, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * Reads and checks `<dir>/release.json` and that every stream it lists is present with the listed size
 * (a truncated copy fails here, not after uploading gigabytes). Full streams come first: an incremental of
 * this release may need the release's snapshot to be known, and the server takes it from the first artifact.
 */
export async function readReleaseIndex(dir: string): Promise<ReleaseIndex> {
  const path = join(dir, RELEASE_INDEX_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw CliError.usage(
        `${dir} has no ${RELEASE_INDEX_FILE}: give the output directory of \`cowroot-release build\``,
      );
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const index = raw as Partial<ReleaseIndex>;
  if (index?.format !== RELEASE_INDEX_FORMAT) {
    throw new CliError(
      `${path}: format ${JSON.stringify(index?.format)} is not ${RELEASE_INDEX_FORMAT} (built by another version of cowroot-release?)`,
    );
  }
  if (
    typeof index.name !== 'string' ||
    typeof index.version !== 'string' ||
    !Array.isArray(index.artifacts) ||
    index.artifacts.length === 0
  ) {
    throw new CliError(`${path}: needs name, version and at least one artifact`);
  }
  const artifacts = index.artifacts.map((item, position) => {
    const entry = item as Partial<IndexedArtifact>;
    const what = `artifacts[${position}]`;
    if (
      entry.kind !== ArtifactKind.Full &&
      entry.kind !== ArtifactKind.Incremental &&
      entry.kind !== ArtifactKind.Delta
    )
      throw new CliError(`${path}: ${what}.kind must be full, incremental or delta`);
    if (!Number.isSafeInteger(entry.size) || (entry.size as number) < 1)
      throw new CliError(`${path}: ${what}.size must be a byte count above 0`);
    if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256))
      throw new CliError(`${path}: ${what}.sha256 must be 64 hex digits`);
    return {
      kind: entry.kind,
      file: plainName(entry.file, `${what}.file`),
      manifest: plainName(entry.manifest, `${what}.manifest`),
      signature: plainName(entry.signature, `${what}.signature`),
      size: entry.size as number,
      sha256: entry.sha256,
      parent: entry.parent ?? null,
    };
  });
  for (const artifact of artifacts) {
    for (const name of [artifact.file, artifact.manifest, artifact.signature]) {
      const file = join(dir, name);
      let size: number;
      try {
        size = (await stat(file)).size;
      } catch {
        throw new CliError(`${file} is listed in ${RELEASE_INDEX_FILE} but missing`);
      }
      if (name === artifact.file && size !== artifact.size) {
        throw new CliError(`${file} has ${size} bytes, ${RELEASE_INDEX_FILE} says ${artifact.size}: incomplete copy?`);
      }
    }
  }
  // full, then incremental, then delta (issue 14): a stable order that keeps the full stream first
  const rank = (kind: ArtifactKind) => [ArtifactKind.Full, ArtifactKind.Incremental, ArtifactKind.Delta].indexOf(kind);
  artifacts.sort((a, b) => rank(a.kind) - rank(b.kind));
  return {
    format: index.format,
    name: index.name,
    version: index.version,
    description: typeof index.description === 'string' ? index.description : null,
    snapshotUuid: String(index.snapshotUuid ?? ''),
    createdAt: String(index.createdAt ?? ''),
    artifacts,
  };
}
