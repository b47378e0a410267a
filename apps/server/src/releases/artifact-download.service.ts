import { Injectable, Logger } from '@nestjs/common';
import { DomainError, DomainErrorCode } from '../common/domain-error';
import type { Request, Response } from 'express';
import { open } from 'node:fs/promises';
import { Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Actor } from '../auth/actor';
import { MetricsService } from '../metrics/metrics.service';
import { ifRangeAllowsPartial, resolveByteRange } from './byte-range';
import { ReleasesService } from './releases.service';

function header(request: Request, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Streams artifact files from storage, whole or one byte range, so devices can resume downloads. */
@Injectable()
export class ArtifactDownloadService {
  private readonly logger = new Logger(ArtifactDownloadService.name);
  private readonly downloadBytes;

  constructor(
    private readonly releases: ReleasesService,
    metrics: MetricsService,
  ) {
    this.downloadBytes = metrics.counter(
      'cowroot_artifact_download_bytes_total',
      'Artifact bytes sent to downloaders',
      ['actor_type'],
    );
  }

  async send(
    name: string,
    version: string,
    file: string,
    request: Request,
    response: Response,
    actor: Actor,
  ): Promise<void> {
    const { artifact, path } = await this.releases.getArtifact(name, version, file);
    // Opened before any header is sent: a file missing from storage is a 500, not a cut stream.
    const handle = await open(path, 'r');
    let streaming = false;
    try {
      const { size } = await handle.stat();
      if (size !== artifact.size)
        throw new Error(`stored file ${path} has ${size} bytes, the artifact ${artifact.size}`);
      const etag = `"${artifact.sha256}"`;
      response.setHeader('Accept-Ranges', 'bytes');
      response.setHeader('ETag', etag);
      response.setHeader('Cache-Control', 'private, no-transform');

      let range = resolveByteRange(header(request, 'range'), size);
      if (range.type !== 'full' && !ifRangeAllowsPartial(header(request, 'if-range'), etag)) range = { type: 'full' };
      if (range.type === 'unsatisfiable') {
        response.setHeader('Content-Range', `bytes */${size}`);
        throw new DomainError(
          DomainErrorCode.RangeNotSatisfiable,
          `range ${header(request, 'range')} is outside the ${size} bytes of ${file}`,
        );
      }
      const [start, end] = range.type === 'partial' ? [range.start, range.end] : [0, size - 1];
      response.status(range.type === 'partial' ? 206 : 200);
      if (range.type === 'partial') response.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
      response.setHeader('Content-Length', String(end - start + 1));
      response.setHeader('Content-Type', 'application/octet-stream');
      response.setHeader('Content-Disposition', `attachment; filename="${artifact.file}"`);
      if (request.method === 'HEAD') {
        response.end();
        return;
      }

      const counter = this.downloadBytes.labels({ actor_type: actor.type });
      const meter = new Transform({
        transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
          counter.inc(chunk.length);
          callback(null, chunk);
        },
      });
      streaming = true;
      try {
        await pipeline(handle.createReadStream({ start, end, autoClose: true }), meter, response);
      } catch (error) {
        // The downloader went away; it resumes with Range.
        this.logger.debug(
          `download of ${name} ${version} ${file} by ${actor.type} ${actor.id} ended early: ${(error as Error).message}`,
        );
      }
    } finally {
      if (!streaming) await handle.close();
    }
  }
}
