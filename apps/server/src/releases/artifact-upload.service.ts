import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { ArtifactManifest, parseManifest } from '@cowroot/protocol';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { Actor } from '../auth/actor';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import { MetricsService } from '../metrics/metrics.service';
import { SigningKeysService } from '../signing-keys/signing-keys.service';
import { ArtifactCommitService, VerifiedUpload } from './artifact-commit.service';
import { checkArtifactPlacement } from './artifact-placement';
import { ArtifactStorage } from './artifact-storage.service';
import { parseUploadContentRange, UploadChunkRange } from './content-range';
import { ByteLimitExceededError, writeStreamHashed } from './hashing-file-writer';
import { ReleaseArtifact } from './release-artifact.entity';
import { Release } from './release.entity';
import { ARTIFACT_FILE_PATTERN, ReleasesService } from './releases.service';
import { ServerConfig } from '../config/server-config';

/** The largest manifest we decode from a header (the install command carries at most 16 KiB base64). */
const MAX_MANIFEST_BYTES = 12 * 1024;

/** Strict base64: what install commands carry must pass the protocol's @IsBase64. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface UploadRequest {
  name: string;
  version: string;
  file: string;
  /** X-Cowroot-Manifest: the manifest bytes, base64 */
  manifestHeader: string | undefined;
  /** X-Cowroot-Signature: detached ed25519 signature over the manifest bytes, base64 */
  signatureHeader: string | undefined;
  contentLength: number | undefined;
  contentRange: string | undefined;
  body: Readable;
}

export type UploadOutcome =
  /** stored and committed by this request */
  | { status: 'created'; release: Release; artifact: ReleaseArtifact }
  /** the same manifest was committed before: a retried upload, the body was not read */
  | { status: 'exists'; release: Release; artifact: ReleaseArtifact }
  /** a chunk of a resumable upload was stored; more to come */
  | { status: 'incomplete'; offset: number; size: number };

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Receives artifact uploads. Everything that can be decided from the headers (release, manifest,
 * signature, placement) is decided before the first body byte is read; the body is then streamed to a
 * temp file while hashed, checked against the manifest, and only then renamed into place and committed
 * (ArtifactCommitService).
 */
@Injectable()
export class ArtifactUploadService {
  private readonly logger = new Logger(ArtifactUploadService.name);
  private readonly uploadBytes;
  private readonly uploads;
  /** resumable uploads with a chunk in flight: one writer per partial file */
  private readonly chunksInFlight = new Set<string>();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly releases: ReleasesService,
    private readonly signingKeys: SigningKeysService,
    private readonly storage: ArtifactStorage,
    private readonly audit: AuditService,
    private readonly committer: ArtifactCommitService,
    private readonly config: ServerConfig,
    metrics: MetricsService,
  ) {
    this.uploadBytes = metrics.counter(
      'cowroot_artifact_upload_bytes_total',
      'Artifact bytes received from uploads (stored or not)',
    );
    this.uploads = metrics.counter('cowroot_artifact_uploads_total', 'Artifact upload requests by outcome', [
      'outcome',
    ]);
  }

  async upload(request: UploadRequest, actor: Actor): Promise<UploadOutcome> {
    try {
      const outcome = await this.receive(request, actor);
      this.uploads.inc({ outcome: outcome.status });
      return outcome;
    } catch (error) {
      this.uploads.inc({ outcome: error instanceof DomainError ? error.code.toLowerCase() : 'error' });
      throw error;
    }
  }

  /** Where a resumable upload stands, or 404 when none is in progress. */
  async status(name: string, version: string, file: string): Promise<{ offset: number; size: number }> {
    const release = await this.releases.get(name, version);
    const partial = ARTIFACT_FILE_PATTERN.test(file) ? await this.storage.readPartial(release.id, file) : null;
    if (!partial) throw new DomainError(DomainErrorCode.UploadNotFound, `no resumable upload of ${file} in progress`);
    return { offset: partial.offset, size: partial.size };
  }

  /** Removes the partial file of a resumable upload and audits it (404 when none is in progress). */
  async abandon(name: string, version: string, file: string, actor: Actor): Promise<void> {
    const release = await this.releases.get(name, version);
    // the name becomes a path: only names a manifest could carry
    const partial = ARTIFACT_FILE_PATTERN.test(file) ? await this.storage.readPartial(release.id, file) : null;
    if (!partial) throw new DomainError(DomainErrorCode.UploadNotFound, `no resumable upload of ${file} in progress`);
    if (this.chunksInFlight.has(`${release.id}/${file}`)) {
      throw new DomainError(
        DomainErrorCode.UploadBusy,
        `a chunk of ${file} is being received; abandon it after that request ends`,
      );
    }
    await this.storage.removePartial(release.id, file);
    await this.audit.record({
      actor,
      action: 'release.artifact.upload_abandoned',
      subjectType: 'release',
      subjectId: `${release.name}/${release.version}`,
      before: { file, receivedBytes: partial.offset, size: partial.size, startedAt: partial.startedAt },
    });
  }

  private async receive(request: UploadRequest, actor: Actor): Promise<UploadOutcome> {
    const verified = await this.verifyHeaders(request);
    const { release, manifest, manifestBytes } = verified;

    const existing = await this.dataSource
      .getRepository(ReleaseArtifact)
      .findOne({ where: { releaseId: release.id, file: manifest.file } });
    if (existing) {
      if (existing.manifest.equals(manifestBytes)) return { status: 'exists', release, artifact: existing };
      throw new DomainError(
        DomainErrorCode.ArtifactConflict,
        `release ${release.name} ${release.version} already has an artifact ${manifest.file} with another manifest`,
      );
    }
    await checkArtifactPlacement(release, manifest, this.dataSource.manager);

    let range: UploadChunkRange | null;
    try {
      range = parseUploadContentRange(request.contentRange);
    } catch (error) {
      throw new DomainError(DomainErrorCode.UploadInvalid, (error as Error).message);
    }
    return range === null
      ? this.receiveWhole(request, verified, actor)
      : this.receiveChunk(request, verified, range, actor);
  }

  /** Release, manifest, URL agreement and signature: all from headers, before the body. */
  private async verifyHeaders(request: UploadRequest): Promise<VerifiedUpload> {
    const release = await this.releases.get(request.name, request.version);
    if (!request.manifestHeader || !request.signatureHeader) {
      throw new DomainError(
        DomainErrorCode.ManifestInvalid,
        'X-Cowroot-Manifest and X-Cowroot-Signature headers are required',
      );
    }
    const signature = request.signatureHeader.trim();
    if (!BASE64.test(request.manifestHeader.trim()) || !BASE64.test(signature)) {
      throw new DomainError(
        DomainErrorCode.ManifestInvalid,
        'X-Cowroot-Manifest and X-Cowroot-Signature must be base64',
      );
    }
    const manifestBytes = Buffer.from(request.manifestHeader.trim(), 'base64');
    if (manifestBytes.length === 0 || manifestBytes.length > MAX_MANIFEST_BYTES) {
      throw new DomainError(
        DomainErrorCode.ManifestInvalid,
        `X-Cowroot-Manifest must be base64 of 1..${MAX_MANIFEST_BYTES} manifest bytes`,
      );
    }
    const parsed = parseManifest(manifestBytes);
    if (!parsed.ok) throw new DomainError(DomainErrorCode.ManifestInvalid, `invalid manifest: ${parsed.message}`);
    const manifest = parsed.value;
    if (
      manifest.release.name !== release.name ||
      manifest.release.version !== release.version ||
      manifest.file !== request.file
    ) {
      throw new DomainError(
        DomainErrorCode.ManifestInvalid,
        `the manifest describes ${manifest.release.name} ${manifest.release.version} ${manifest.file}, not ${release.name} ${release.version} ${request.file}`,
      );
    }
    if (manifest.size > this.config.maxArtifactBytes) {
      throw new DomainError(
        DomainErrorCode.ArtifactTooLarge,
        `artifact of ${manifest.size} bytes exceeds the limit of ${this.config.maxArtifactBytes} (MAX_ARTIFACT_BYTES)`,
      );
    }
    const signer = await this.signingKeys.findSigner(manifestBytes, signature);
    if (!signer) {
      throw new DomainError(
        DomainErrorCode.SignatureNotVerified,
        'the manifest signature does not verify with any active registered signing key',
      );
    }
    return { release, manifest, manifestBytes, signature, signer };
  }

  /** One request carries the whole stream; anything short of a verified stream leaves nothing behind. */
  private async receiveWhole(request: UploadRequest, verified: VerifiedUpload, actor: Actor): Promise<UploadOutcome> {
    const { manifest } = verified;
    if (request.contentLength !== undefined && request.contentLength !== manifest.size) {
      throw new DomainError(
        DomainErrorCode.UploadInvalid,
        `Content-Length ${request.contentLength} differs from the manifest size ${manifest.size}`,
      );
    }
    const temp = this.storage.newTempPath();
    const written = await this.write(
      request.body,
      temp,
      { flags: 'w', maxBytes: manifest.size, removeOnError: true },
      manifest.size,
    );
    try {
      this.checkContent(manifest, written.bytes, written.sha256);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    const outcome: UploadOutcome = { status: 'created', ...(await this.committer.commit(verified, temp, actor)) };
    // a resumable upload of the same file that was interrupted earlier has nothing left to resume
    await this.storage.removePartial(verified.release.id, manifest.file);
    return outcome;
  }

  /**
   * A chunk of a resumable upload (Content-Range: bytes first-last/total). The partial file keeps what
   * arrived, even from an aborted request, so the client asks GET …/upload for the offset and goes on
   * from there. The whole file is hashed once the last byte is in.
   */
  private async receiveChunk(
    request: UploadRequest,
    verified: VerifiedUpload,
    range: UploadChunkRange,
    actor: Actor,
  ): Promise<UploadOutcome> {
    const { release, manifest, manifestBytes } = verified;
    if (range.total !== manifest.size) {
      throw new DomainError(
        DomainErrorCode.UploadInvalid,
        `Content-Range total ${range.total} differs from the manifest size ${manifest.size}`,
      );
    }
    const chunkLength = range.end - range.start + 1;
    if (request.contentLength !== undefined && request.contentLength !== chunkLength) {
      throw new DomainError(
        DomainErrorCode.UploadInvalid,
        `Content-Length ${request.contentLength} differs from the Content-Range length ${chunkLength}`,
      );
    }
    const key = `${release.id}/${manifest.file}`;
    if (this.chunksInFlight.has(key)) {
      throw new DomainError(
        DomainErrorCode.UploadBusy,
        `another chunk of ${manifest.file} is being received; retry when it has ended`,
      );
    }
    this.chunksInFlight.add(key);
    try {
      const manifestSha256 = sha256Hex(manifestBytes);
      const partial = await this.storage.readPartial(release.id, manifest.file);
      if (range.start === 0) {
        await this.storage.startPartial(release.id, manifest.file, {
          manifestSha256,
          size: manifest.size,
          startedAt: new Date().toISOString(),
        });
      } else if (!partial || partial.manifestSha256 !== manifestSha256 || partial.offset !== range.start) {
        const offset = partial && partial.manifestSha256 === manifestSha256 ? partial.offset : 0;
        throw new DomainError(
          DomainErrorCode.UploadOffsetMismatch,
          `the upload of ${manifest.file} continues at byte ${offset}, not ${range.start}`,
          {
            offset,
          },
        );
      }
      const path = this.storage.partialPath(release.id, manifest.file);
      const written = await this.write(
        request.body,
        path,
        { flags: 'a', maxBytes: chunkLength, removeOnError: false },
        manifest.size,
      );
      const offset = range.start + written.bytes;
      if (written.bytes !== chunkLength) {
        throw new DomainError(
          DomainErrorCode.UploadInvalid,
          `the chunk ended after ${written.bytes} of ${chunkLength} bytes`,
          { offset },
        );
      }
      if (offset < manifest.size) return { status: 'incomplete', offset, size: manifest.size };

      const sha256 = await this.storage.sha256Of(path);
      try {
        this.checkContent(manifest, offset, sha256);
      } catch (error) {
        await this.storage.removePartial(release.id, manifest.file);
        throw error;
      }
      await this.storage.removePartialState(release.id, manifest.file);
      return { status: 'created', ...(await this.committer.commit(verified, path, actor)) };
    } finally {
      this.chunksInFlight.delete(key);
    }
  }

  private async write(
    body: Readable,
    path: string,
    options: { flags: 'w' | 'a'; maxBytes: number; removeOnError: boolean },
    manifestSize: number,
  ): Promise<{ bytes: number; sha256: string }> {
    try {
      return await writeStreamHashed(body, path, { ...options, onBytes: (n) => this.uploadBytes.inc(n) });
    } catch (error) {
      if (error instanceof ByteLimitExceededError) {
        throw new DomainError(
          DomainErrorCode.UploadSizeMismatch,
          `the body is longer than the ${options.maxBytes} bytes expected (manifest size ${manifestSize})`,
        );
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        if (!options.removeOnError) await rm(path, { force: true });
        this.logger.error(`artifact storage is full (${code}) while writing ${path}`);
        throw new DomainError(
          DomainErrorCode.StorageFull,
          'artifact storage is full: free space in STORAGE_DIR and upload again',
        );
      }
      this.logger.warn(`upload to ${path} ended early: ${(error as Error).message}`);
      throw new DomainError(DomainErrorCode.UploadInvalid, `the upload was interrupted: ${(error as Error).message}`);
    }
  }

  private checkContent(manifest: ArtifactManifest, bytes: number, sha256: string): void {
    if (bytes !== manifest.size) {
      throw new DomainError(
        DomainErrorCode.UploadSizeMismatch,
        `received ${bytes} bytes, the manifest says ${manifest.size}: upload truncated`,
        {
          received: bytes,
          expected: manifest.size,
        },
      );
    }
    if (sha256 !== manifest.sha256) {
      throw new DomainError(
        DomainErrorCode.UploadChecksumMismatch,
        `sha256 of the received stream ${sha256} differs from the manifest's ${manifest.sha256}`,
        {
          received: sha256,
          expected: manifest.sha256,
        },
      );
    }
  }
}
