import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SigningKeysModule } from '../signing-keys/signing-keys.module';
import { ArtifactCommitService } from './artifact-commit.service';
import { ArtifactDownloadService } from './artifact-download.service';
import { ArtifactPicker } from './artifact-picker';
import { ArtifactStorage } from './artifact-storage.service';
import { ArtifactUploadService } from './artifact-upload.service';
import { ArtifactUrlService } from './artifact-url.service';
import { ArtifactsController } from './artifacts.controller';
import { ReleaseArtifact } from './release-artifact.entity';
import { ReleaseUsageService } from './release-usage.service';
import { ReleaseBasesController } from './release-bases.controller';
import { ReleaseBasesService } from './release-bases.service';
import { Release } from './release.entity';
import { ReleasesController } from './releases.controller';
import { ReleasesService } from './releases.service';

/**
 * Releases, their artifacts (upload, storage, download) and the signing keys that vouch for them.
 * Exported for the rollouts work: ReleasesService (lookups), ArtifactPicker (delta planning),
 * ArtifactUrlService (install command offers), ReleaseUsageService (register a "still in use" check).
 */
@Module({
  imports: [TypeOrmModule.forFeature([Release, ReleaseArtifact]), SigningKeysModule],
  controllers: [ReleasesController, ArtifactsController, ReleaseBasesController],
  providers: [
    ReleasesService,
    ArtifactStorage,
    ArtifactUploadService,
    ArtifactCommitService,
    ArtifactDownloadService,
    ArtifactUrlService,
    ReleaseUsageService,
    ReleaseBasesService,
    { provide: ArtifactPicker, useValue: new ArtifactPicker() },
  ],
  exports: [ReleasesService, ArtifactPicker, ArtifactUrlService, ReleaseUsageService],
})
export class ReleasesModule {}
