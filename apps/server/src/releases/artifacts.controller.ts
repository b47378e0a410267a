import { Controller, Delete, Get, HttpCode, Param, Put, Req, Res } from '@nestjs/common';
import {
  ApiBasicAuth,
  ApiBearerAuth,
  ApiBody,
  ApiConsumes,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Actor } from '../auth/actor';
import { AllowDevices } from '../auth/allow-devices.decorator';
import { CurrentActor } from '../auth/current-actor.decorator';
import { Role } from '../auth/role.enum';
import { Roles } from '../auth/roles.decorator';
import { StreamedBody } from '../common/body-limit.decorator';
import { DomainError, DomainErrorCode as E } from '../common/domain-error';
import { ArtifactDownloadService } from './artifact-download.service';
import { ArtifactUploadService } from './artifact-upload.service';
import { ArtifactUrlService } from './artifact-url.service';
import { ArtifactManifestDto } from './dto/artifact-manifest.dto';
import { ArtifactDto } from './dto/artifact.dto';
import { UploadStatusDto } from './dto/upload-status.dto';
import { ReleasesService } from './releases.service';
import { ApiErrors } from '../common/api-errors.decorator';

const UPLOAD_DESCRIPTION = `Body: the raw stream (Content-Type application/octet-stream), never buffered by the server.
Headers X-Cowroot-Manifest (the manifest bytes, base64) and X-Cowroot-Signature (detached ed25519 signature over
them, base64) are checked before the body is read: the manifest must name this release and file and be signed by
an active registered signing key; an incremental's parent release must already have an artifact.

Two modes:
- whole: no Content-Range; the body is the whole stream (Content-Length = manifest size). Anything short of a
  complete stream with the manifest's size and sha256 is refused and nothing is kept. 201 with the artifact.
- resumable: Content-Range: bytes <first>-<last>/<manifest size>, chunks in order. Each chunk answers 202
  { offset, size } until the last, which answers 201 with the artifact once the whole file's sha256 matched.
  After an interrupted chunk, GET …/upload tells the offset to continue from; a chunk starting elsewhere is
  answered 409 with details.offset; a chunk starting at 0 restarts the upload.
Re-sending an artifact that is already stored with the same manifest answers 200 without reading the body.`;

const BINARY = { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } };

function header(request: Request, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

@ApiTags('releases')
@ApiBearerAuth()
@ApiErrors(E.Unauthorized)
@Controller('api/v1/releases/:name/:version/artifacts')
export class ArtifactsController {
  constructor(
    private readonly uploads: ArtifactUploadService,
    private readonly downloads: ArtifactDownloadService,
    private readonly releases: ReleasesService,
    private readonly urls: ArtifactUrlService,
  ) {}

  @Put(':file')
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Upload an artifact (whole or in resumable chunks)', description: UPLOAD_DESCRIPTION })
  @ApiConsumes('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiHeader({ name: 'X-Cowroot-Manifest', required: true, description: 'manifest bytes, base64' })
  @ApiHeader({
    name: 'X-Cowroot-Signature',
    required: true,
    description: 'ed25519 signature over the manifest bytes, base64',
  })
  @ApiHeader({
    name: 'Content-Range',
    required: false,
    description: 'bytes <first>-<last>/<total> for a resumable chunk',
  })
  @ApiResponse({ status: 201, type: ArtifactDto, description: 'stored' })
  @ApiResponse({ status: 200, type: ArtifactDto, description: 'already stored with this manifest' })
  @ApiResponse({ status: 202, type: UploadStatusDto, description: 'chunk stored, send the next from offset' })
  @ApiErrors(
    E.UnsupportedContentType,
    E.ManifestInvalid,
    E.UploadInvalid,
    E.Forbidden,
    E.ReleaseNotFound,
    E.ArtifactConflict,
    E.UploadBusy,
    E.UploadOffsetMismatch,
    E.ArtifactTooLarge,
    E.SignatureNotVerified,
    E.SnapshotUuidMismatch,
    E.ParentReleaseMissing,
    E.UploadSizeMismatch,
    E.UploadChecksumMismatch,
    E.StorageFull,
    E.PayloadTooLarge,
  )
  @StreamedBody()
  async upload(
    @Param('name') name: string,
    @Param('version') version: string,
    @Param('file') file: string,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
    @CurrentActor() actor: Actor,
  ): Promise<ArtifactDto | UploadStatusDto> {
    try {
      if (request.is(['json', 'urlencoded'])) {
        throw new DomainError(E.UnsupportedContentType, 'send the stream as Content-Type: application/octet-stream');
      }
      const length = header(request, 'content-length');
      const outcome = await this.uploads.upload(
        {
          name,
          version,
          file,
          manifestHeader: header(request, 'x-cowroot-manifest'),
          signatureHeader: header(request, 'x-cowroot-signature'),
          contentLength: length === undefined ? undefined : Number(length),
          contentRange: header(request, 'content-range'),
          body: request,
        },
        actor,
      );
      if (outcome.status === 'incomplete') {
        response.status(202);
        return { offset: outcome.offset, size: outcome.size };
      }
      if (outcome.status === 'exists' && !request.readableEnded) response.setHeader('Connection', 'close');
      response.status(outcome.status === 'created' ? 201 : 200);
      return ArtifactDto.from(outcome.artifact, this.urls.urlFor(outcome.release, outcome.artifact.file));
    } catch (error) {
      // Refused before (or while) reading the body: close the connection instead of draining the rest.
      if (!request.readableEnded) response.setHeader('Connection', 'close');
      throw error;
    }
  }

  @Get(':file/upload')
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Offset of a resumable upload in progress (404 when none)' })
  @ApiOkResponse({ type: UploadStatusDto })
  @ApiErrors(E.Forbidden, E.ReleaseNotFound, E.UploadNotFound)
  async uploadStatus(
    @Param('name') name: string,
    @Param('version') version: string,
    @Param('file') file: string,
  ): Promise<UploadStatusDto> {
    return this.uploads.status(name, version, file);
  }

  @Delete(':file/upload')
  @HttpCode(204)
  @Roles(Role.Operator)
  @ApiOperation({ summary: 'Abandon a resumable upload and remove its partial file (audited)' })
  @ApiNoContentResponse({ description: 'abandoned' })
  @ApiErrors(E.Forbidden, E.ReleaseNotFound, E.UploadNotFound, E.UploadBusy)
  async abandonUpload(
    @Param('name') name: string,
    @Param('version') version: string,
    @Param('file') file: string,
    @CurrentActor() actor: Actor,
  ): Promise<void> {
    await this.uploads.abandon(name, version, file, actor);
  }

  @Get(':file/manifest')
  @AllowDevices()
  @ApiBasicAuth('device')
  @ApiOperation({ summary: 'The signed manifest of an artifact and its signature' })
  @ApiOkResponse({ type: ArtifactManifestDto })
  @ApiErrors(E.ReleaseNotFound, E.ArtifactNotFound)
  async manifest(
    @Param('name') name: string,
    @Param('version') version: string,
    @Param('file') file: string,
  ): Promise<ArtifactManifestDto> {
    const { artifact } = await this.releases.getArtifact(name, version, file);
    return {
      manifest: artifact.manifest.toString('base64'),
      signature: artifact.signature,
      parsed: JSON.parse(artifact.manifest.toString('utf8')) as Record<string, unknown>,
    };
  }

  @Get(':file')
  @AllowDevices()
  @ApiBasicAuth('device')
  @ApiOperation({
    summary: 'Download an artifact stream',
    description:
      'Single byte ranges (Range: bytes=first-last, first-, -suffix) answer 206 so devices resume; If-Range with the ETag; 416 when unsatisfiable. ETag is the quoted sha256.',
  })
  @ApiHeader({ name: 'Range', required: false })
  @ApiResponse({ status: 200, description: 'the whole stream', content: BINARY })
  @ApiResponse({ status: 206, description: 'the requested range', content: BINARY })
  @ApiErrors(E.ReleaseNotFound, E.ArtifactNotFound, E.RangeNotSatisfiable)
  async download(
    @Param('name') name: string,
    @Param('version') version: string,
    @Param('file') file: string,
    @Req() request: Request,
    @Res() response: Response,
    @CurrentActor() actor: Actor,
  ): Promise<void> {
    await this.downloads.send(name, version, file, request, response, actor);
  }
}
