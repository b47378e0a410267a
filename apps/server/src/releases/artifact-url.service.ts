import { Injectable } from '@nestjs/common';
import { ArtifactOffer } from '@cowroot/protocol';
import { ServerConfig } from '../config/server-config';
import { ReleaseArtifact } from './release-artifact.entity';

/** Builds what devices are told about an artifact: where to fetch it, and the signed manifest verbatim. */
@Injectable()
export class ArtifactUrlService {
  constructor(private readonly config: ServerConfig) {}

  /** The download URL under PUBLIC_URL (the address devices reach the server by). */
  urlFor(release: { name: string; version: string }, file: string): string {
    const segments = [release.name, release.version, 'artifacts', file].map(encodeURIComponent);
    return `${this.config.publicUrl}/api/v1/releases/${segments[0]}/${segments[1]}/${segments[2]}/${segments[3]}`;
  }

  /** The `artifact` part of an install command (docs/protocol.md §6). */
  offerFor(release: { name: string; version: string }, artifact: ReleaseArtifact): ArtifactOffer {
    return {
      url: this.urlFor(release, artifact.file),
      manifest: artifact.manifest.toString('base64'),
      signature: artifact.signature,
    };
  }
}
