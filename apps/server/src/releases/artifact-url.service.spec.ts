import { ArtifactKind, ArtifactOffer } from '@cowroot/protocol';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { ServerConfig } from '../config/server-config';
import { ArtifactUrlService } from './artifact-url.service';
import { ReleaseArtifact } from './release-artifact.entity';

describe(ArtifactUrlService.name, () => {
  const config = ServerConfig.fromEnv({ PUBLIC_URL: 'https://fleet.example.com/cowroot/' }, '/srv');
  const service = new ArtifactUrlService(config);

  it('builds the download URL under PUBLIC_URL with every path segment encoded', () => {
    expect(service.urlFor({ name: 'base', version: '1.0+build.7' }, 'base-1.0.btrfs.zst')).toBe(
      'https://fleet.example.com/cowroot/api/v1/releases/base/1.0%2Bbuild.7/artifacts/base-1.0.btrfs.zst',
    );
  });

  it('offers the manifest bytes and signature verbatim, valid as a protocol ArtifactOffer', () => {
    const manifest = Buffer.from('{"format":"cowroot-artifact/1"}');
    const artifact = Object.assign(new ReleaseArtifact(), {
      file: 'full.btrfs.zst',
      kind: ArtifactKind.Full,
      manifest,
      signature: 'c2lnbmF0dXJl',
    });
    const offer = service.offerFor({ name: 'base', version: '1.0' }, artifact);
    expect(offer).toEqual({
      url: 'https://fleet.example.com/cowroot/api/v1/releases/base/1.0/artifacts/full.btrfs.zst',
      manifest: manifest.toString('base64'),
      signature: 'c2lnbmF0dXJl',
    });
    expect(Buffer.from(offer.manifest, 'base64').equals(manifest)).toBe(true);
    expect(validateSync(plainToInstance(ArtifactOffer, offer))).toEqual([]);
  });
});
