import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { ArtifactKind, ArtifactManifest } from '@cowroot/protocol';
import { rm } from 'node:fs/promises';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { Actor } from '../auth/actor';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { isUniqueViolation } from '../database/unique-violation';
import { SigningKey } from '../signing-keys/signing-key.entity';
import { checkArtifactPlacement } from './artifact-placement';
import { ArtifactStorage } from './artifact-storage.service';
import { ReleaseArtifact } from './release-artifact.entity';
import { Release } from './release.entity';

/** An upload whose headers were verified (ArtifactUploadService): the release, manifest and its signer. */
export interface VerifiedUpload {
  release: Release;
  manifest: ArtifactManifest;
  manifestBytes: Buffer;
  signature: string;
  signer: SigningKey;
}

/**
 * The last step of an upload, once the body is on disk and matches its manifest: the artifact row, the
 * file moved into place and the audit entry, under the release row's lock.
 */
@Injectable()
export class ArtifactCommitService {
  private readonly logger = new Logger(ArtifactCommitService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly storage: ArtifactStorage,
    private readonly audit: AuditService,
  ) {}

  /**
   * Under the release row lock: re-check placement (a concurrent upload or delete may have won), insert
   * the row, move the file into place, audit. A failure after the move removes the moved file again.
   */
  async commit(
    verified: VerifiedUpload,
    tempPath: string,
    actor: Actor,
  ): Promise<{ release: Release; artifact: ReleaseArtifact }> {
    const { manifest, manifestBytes, signature, signer } = verified;
    let placed = false;
    try {
      const result = await this.dataSource.transaction(async (manager) => {
        const release = await manager.findOne(Release, {
          where: { id: verified.release.id },
          lock: { mode: 'pessimistic_write' },
        });
        if (!release)
          throw new DomainError(
            DomainErrorCode.ReleaseNotFound,
            `release ${verified.release.name} ${verified.release.version} was deleted during the upload`,
          );
        const clash = await manager.findOne(ReleaseArtifact, { where: { releaseId: release.id, file: manifest.file } });
        if (clash)
          throw new DomainError(
            DomainErrorCode.ArtifactConflict,
            `artifact ${manifest.file} was stored by another upload meanwhile`,
          );
        await checkArtifactPlacement(release, manifest, manager);
        const artifact = await manager.save(
          manager.create(ReleaseArtifact, {
            releaseId: release.id,
            file: manifest.file,
            kind: manifest.kind,
            size: manifest.size,
            sha256: manifest.sha256,
            compression: manifest.compression,
            snapshotUuid: manifest.snapshotUuid,
            parentReleaseName: manifest.parent?.release.name ?? null,
            parentReleaseVersion: manifest.parent?.release.version ?? null,
            parentSnapshotUuid: manifest.parent?.snapshotUuid ?? null,
            deltaFormat: manifest.deltaFormat ?? null,
            manifest: manifestBytes,
            signature,
            signingKeyId: signer.id,
            uploadedBy: actor.id,
          }),
        );
        if (release.snapshotUuid === null) {
          release.snapshotUuid = manifest.snapshotUuid;
          await manager.update(Release, { id: release.id }, { snapshotUuid: manifest.snapshotUuid });
        }
        await this.audit.record(
          {
            actor,
            action: 'release.artifact.uploaded',
            subjectType: 'release',
            subjectId: `${release.name}/${release.version}`,
            after: {
              file: artifact.file,
              kind: artifact.kind,
              size: artifact.size,
              sha256: artifact.sha256,
              snapshotUuid: artifact.snapshotUuid,
              parent: manifest.parent ?? null,
              // which devices the delta is offered to depends on it (docs/rollouts.md "Dispatch"); null: none named
              ...(artifact.kind === ArtifactKind.Delta ? { deltaFormat: artifact.deltaFormat } : {}),
              signingKey: { id: signer.id, name: signer.name, fingerprint: signer.fingerprint },
            },
          },
          manager,
        );
        await this.storage.place(tempPath, release.id, manifest.file);
        placed = true;
        return { release, artifact };
      });
      this.logger.log(
        `stored ${result.release.name} ${result.release.version} ${manifest.file} (${manifest.size} bytes, sha256 ${manifest.sha256})`,
      );
      return result;
    } catch (error) {
      await rm(tempPath, { force: true });
      if (placed) await this.storage.removeArtifact(verified.release.id, manifest.file);
      if (isUniqueViolation(error))
        throw new DomainError(
          DomainErrorCode.ArtifactConflict,
          `artifact ${manifest.file} conflicts with one stored meanwhile`,
        );
      throw error;
    }
  }
}
