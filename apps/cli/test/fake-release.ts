import { MANIFEST_FORMAT, signManifest } from '@cowroot/protocol';
import { createHash, KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface FakeReleaseInput {
  name: string;
  version: string;
  key: KeyObject;
  /** bytes of the fake full stream */
  size: number;
  /** also write an incremental stream against this release */
  deltaFrom?: { name: string; version: string; snapshotUuid: string; size: number };
}

export interface FakeRelease {
  dir: string;
  snapshotUuid: string;
  files: Record<string, Buffer>;
}

/**
 * A release directory as `cowroot-release build` writes it (release.json, `<file>`, `<file>.manifest.json`,
 * `<file>.manifest.sig`), with random bytes standing in for the zstd send streams: the server and the CLI
 * only move and hash them.
 */
export async function writeFakeRelease(dir: string, input: FakeReleaseInput): Promise<FakeRelease> {
  await mkdir(dir, { recursive: true });
  const snapshotUuid = randomUUID();
  const createdAt = new Date().toISOString();
  const files: Record<string, Buffer> = {};
  const items = [
    {
      file: `${input.name}-${input.version}.full.btrfs.zst`,
      size: input.size,
      parent: null as FakeReleaseInput['deltaFrom'] | null,
    },
  ];
  if (input.deltaFrom) {
    items.push({
      file: `${input.name}-${input.version}.from-${input.deltaFrom.version}.btrfs.zst`,
      size: input.deltaFrom.size,
      parent: input.deltaFrom,
    });
  }
  const artifacts = [];
  for (const item of items) {
    const data = randomBytes(item.size);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const manifest = Buffer.from(
      `${JSON.stringify(
        {
          format: MANIFEST_FORMAT,
          release: { name: input.name, version: input.version },
          kind: item.parent ? 'incremental' : 'full',
          file: item.file,
          size: item.size,
          sha256,
          compression: 'zstd',
          snapshotUuid,
          parent: item.parent
            ? {
                release: { name: item.parent.name, version: item.parent.version },
                snapshotUuid: item.parent.snapshotUuid,
              }
            : null,
          createdAt,
        },
        null,
        2,
      )}\n`,
    );
    files[item.file] = data;
    await writeFile(join(dir, item.file), data);
    await writeFile(join(dir, `${item.file}.manifest.json`), manifest);
    await writeFile(join(dir, `${item.file}.manifest.sig`), `${signManifest(manifest, input.key)}\n`);
    artifacts.push({
      kind: item.parent ? 'incremental' : 'full',
      file: item.file,
      manifest: `${item.file}.manifest.json`,
      signature: `${item.file}.manifest.sig`,
      size: item.size,
      sha256,
      parent: item.parent ? { name: item.parent.name, version: item.parent.version } : null,
    });
  }
  // incremental first on purpose: the CLI must upload the full stream first regardless of the order here
  artifacts.reverse();
  await writeFile(
    join(dir, 'release.json'),
    JSON.stringify(
      {
        format: 'cowroot-release/1',
        name: input.name,
        version: input.version,
        description: `fake ${input.version}`,
        snapshotUuid,
        createdAt,
        artifacts,
      },
      null,
      2,
    ),
  );
  return { dir, snapshotUuid, files };
}
