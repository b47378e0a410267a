import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { RELEASE_NAME_PATTERN, RELEASE_VERSION_PATTERN } from '@cowroot/protocol';
import { DataSource, EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { Actor } from '../auth/actor';
import { decodeCursor, encodeCursor, isIsoTimestamp, isUuid, Page } from '../common/cursor';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { ArtifactStorage } from './artifact-storage.service';
import { ReleaseArtifact } from './release-artifact.entity';
import { ReleaseUsageService } from './release-usage.service';
import { Release } from './release.entity';
import { isUniqueViolation } from '../database/unique-violation';

interface ReleaseCursor {
  createdAt: string;
  id: string;
}

const isReleaseCursor = (value: unknown): value is ReleaseCursor =>
  typeof value === 'object' &&
  value !== null &&
  isIsoTimestamp((value as ReleaseCursor).createdAt) &&
  isUuid((value as ReleaseCursor).id);

/** Artifact file names as the manifest allows them (docs/protocol.md §8): safe as a single path component. */
export const ARTIFACT_FILE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Releases and their artifact rows; uploads live in ArtifactUploadService. */
@Injectable()
export class ReleasesService {
  private readonly logger = new Logger(ReleasesService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly storage: ArtifactStorage,
    private readonly usage: ReleaseUsageService,
  ) {}

  async create(input: { name: string; version: string; description?: string }, actor: Actor): Promise<Release> {
    try {
      return await this.dataSource.transaction(async (manager) => {
        const release = await manager.save(
          manager.create(Release, {
            name: input.name,
            version: input.version,
            description: input.description ?? null,
            snapshotUuid: null,
            createdBy: actor.id,
            createdByName: actor.name,
          }),
        );
        await this.audit.record(
          {
            actor,
            action: 'release.created',
            subjectType: 'release',
            subjectId: `${release.name}/${release.version}`,
            after: { id: release.id, name: release.name, version: release.version, description: release.description },
          },
          manager,
        );
        return release;
      });
    } catch (error) {
      if (isUniqueViolation(error, 'releases_name_version_key')) {
        throw new DomainError(DomainErrorCode.ReleaseExists, `release ${input.name} ${input.version} already exists`);
      }
      throw error;
    }
  }

  /** Newest first. */
  async list(filter: { name?: string }, limit: number, cursor?: string): Promise<Page<Release>> {
    const qb = this.dataSource.getRepository(Release).createQueryBuilder('r').where('1 = 1');
    if (filter.name) qb.andWhere('r.name = :name', { name: filter.name });
    if (cursor) {
      const position = decodeCursor(cursor, isReleaseCursor);
      if (!position) throw new DomainError(DomainErrorCode.InvalidCursor, 'invalid cursor');
      qb.andWhere('(r.created_at, r.id) < (:createdAt, :id)', { createdAt: position.createdAt, id: position.id });
    }
    const rows = await qb
      .orderBy('r.created_at', 'DESC')
      .addOrderBy('r.id', 'DESC')
      .take(limit + 1)
      .getMany();
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: rows.length > limit ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: last.id }) : null,
    };
  }

  async get(name: string, version: string, manager: EntityManager = this.dataSource.manager): Promise<Release> {
    if (!RELEASE_NAME_PATTERN.test(name) || !RELEASE_VERSION_PATTERN.test(version)) {
      throw new DomainError(DomainErrorCode.ReleaseNotFound, `release ${name} ${version} not found`);
    }
    const release = await manager.findOne(Release, { where: { name, version } });
    if (!release) throw new DomainError(DomainErrorCode.ReleaseNotFound, `release ${name} ${version} not found`);
    return release;
  }

  async getWithArtifacts(name: string, version: string): Promise<Release & { artifacts: ReleaseArtifact[] }> {
    const release = await this.get(name, version);
    const artifacts = await this.artifactsOf(release.id);
    return Object.assign(release, { artifacts });
  }

  /** Full stream first, then incrementals by file name. */
  async artifactsOf(releaseId: string, manager: EntityManager = this.dataSource.manager): Promise<ReleaseArtifact[]> {
    const artifacts = await manager.find(ReleaseArtifact, { where: { releaseId }, order: { file: 'ASC' } });
    return artifacts.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'full' ? -1 : 1));
  }

  async getArtifact(
    name: string,
    version: string,
    file: string,
  ): Promise<{ release: Release; artifact: ReleaseArtifact; path: string }> {
    const release = await this.get(name, version);
    const artifact = ARTIFACT_FILE_PATTERN.test(file)
      ? await this.dataSource.getRepository(ReleaseArtifact).findOne({ where: { releaseId: release.id, file } })
      : null;
    if (!artifact)
      throw new DomainError(DomainErrorCode.ArtifactNotFound, `release ${name} ${version} has no artifact ${file}`);
    return { release, artifact, path: this.storage.artifactPath(release.id, file) };
  }

  /**
   * Refused (409) while anything still uses the release (ReleaseUsageService); the row and its artifact
   * rows go in one transaction with the audit entry, the files only after that committed.
   */
  async delete(name: string, version: string, actor: Actor, reason?: string): Promise<void> {
    const releaseId = await this.dataSource.transaction(async (manager) => {
      const found = await this.get(name, version, manager);
      const release = await manager.findOneOrFail(Release, {
        where: { id: found.id },
        lock: { mode: 'pessimistic_write' },
      });
      const usages = await this.usage.findUsages(release, manager);
      if (usages.length > 0) {
        throw new DomainError(
          DomainErrorCode.ReleaseInUse,
          `release ${name} ${version} is still in use (${usages.length}${usages.length >= 20 ? '+' : ''} users, e.g. ${usages[0].kind} ${usages[0].id})`,
          { usages },
        );
      }
      const artifacts = await this.artifactsOf(release.id, manager);
      await manager.delete(Release, { id: release.id });
      await this.audit.record(
        {
          actor,
          action: 'release.deleted',
          subjectType: 'release',
          subjectId: `${name}/${version}`,
          before: {
            id: release.id,
            snapshotUuid: release.snapshotUuid,
            artifacts: artifacts.map((a) => ({ file: a.file, kind: a.kind, size: a.size, sha256: a.sha256 })),
          },
          reason,
        },
        manager,
      );
      return release.id;
    });
    try {
      await this.storage.removeRelease(releaseId);
    } catch (error) {
      // The row is gone, so nothing serves these files any more; they are only wasted space now.
      this.logger.error(
        `release ${name} ${version} deleted but its files could not be removed: ${(error as Error).message}`,
      );
    }
  }
}
