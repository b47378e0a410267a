import { ArtifactKind, MANIFEST_FORMAT, parseManifest } from '@cowroot/protocol';
import { buildManifestBytes, ManifestInput } from './artifact-manifest.builder';
import { ReleaseRefArg } from './release-ref';

const input: ManifestInput = {
  release: new ReleaseRefArg('base', '1.1.0'),
  file: 'base-1.1.0-from-1.0.0.btrfs.zst',
  size: 1234567,
  sha256: 'a'.repeat(64),
  snapshotUuid: 'b5cb5515-595e-af4c-96aa-40251a400c45',
  parent: { release: new ReleaseRefArg('base', '1.0.0'), snapshotUuid: '631081ec-8165-e744-8311-5d7e75d2b05d' },
  createdAt: new Date('2026-11-25T10:00:00Z'),
};

describe(buildManifestBytes.name, () => {
  it('writes an incremental manifest in the protocol format, field for field (docs/protocol.md §8)', () => {
    const text = buildManifestBytes(input).toString('utf8');
    expect(JSON.parse(text)).toEqual({
      format: MANIFEST_FORMAT,
      release: { name: 'base', version: '1.1.0' },
      kind: 'incremental',
      file: 'base-1.1.0-from-1.0.0.btrfs.zst',
      size: 1234567,
      sha256: 'a'.repeat(64),
      compression: 'zstd',
      snapshotUuid: 'b5cb5515-595e-af4c-96aa-40251a400c45',
      parent: { release: { name: 'base', version: '1.0.0' }, snapshotUuid: '631081ec-8165-e744-8311-5d7e75d2b05d' },
      createdAt: '2026-11-25T10:00:00.000Z',
    });
    expect(text.endsWith('}\n')).toBe(true);
  });

  it('writes a full manifest with parent null and the description, which the protocol parser accepts', () => {
    const bytes = buildManifestBytes({
      ...input,
      file: 'base-1.1.0-full.btrfs.zst',
      parent: null,
      description: 'spring release',
    });
    const parsed = parseManifest(bytes);
    expect(parsed.ok).toBe(true);
    if (parsed.ok)
      expect(parsed.value).toMatchObject({ kind: ArtifactKind.Full, parent: null, description: 'spring release' });
  });

  it('writes a delta manifest with the plain stream it reconstructs to and its format', () => {
    const reconstructs = { size: 11_000_000, sha256: 'c'.repeat(64) };
    const parsed = parseManifest(
      buildManifestBytes({ ...input, file: 'base-1.1.0-from-1.0.0.delta.zst', reconstructs }),
    );
    expect(parsed).toMatchObject({ ok: true, value: { kind: ArtifactKind.Delta, reconstructs } });
    const withFormat = buildManifestBytes({ ...input, file: 'd.delta.zst', reconstructs, deltaFormat: 2 });
    expect(JSON.parse(withFormat.toString('utf8'))).toMatchObject({ kind: 'delta', deltaFormat: 2 });
    expect(() => buildManifestBytes({ ...input, deltaFormat: 3 })).toThrow(/would be rejected.*deltaFormat/);
    expect(() => buildManifestBytes({ ...input, parent: null, reconstructs })).toThrow(/would be rejected/);
  });

  it('refuses to produce a manifest devices would reject', () => {
    expect(() => buildManifestBytes({ ...input, snapshotUuid: 'not-a-uuid' })).toThrow(
      /would be rejected by devices: .*snapshotUuid/,
    );
    expect(() => buildManifestBytes({ ...input, size: 0 })).toThrow(/size/);
  });

  it('carries the security version and rollback allowance, and refuses an allowance below the version', () => {
    const bytes = buildManifestBytes({ ...input, security: { securityVersion: 4, allowRollbackFrom: 6 } });
    expect(JSON.parse(bytes.toString('utf8'))).toMatchObject({ securityVersion: 4, allowRollbackFrom: 6 });
    expect(JSON.parse(buildManifestBytes(input).toString('utf8'))).not.toHaveProperty('securityVersion');
    expect(() => buildManifestBytes({ ...input, security: { securityVersion: 4, allowRollbackFrom: 3 } })).toThrow(
      /allowRollbackFrom must not be below securityVersion/,
    );
  });
});
