import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiClient, describeFetchFailure, errorFrom } from '../api-client';
import { ArtifactView, ReleaseWithArtifactsView, UploadStatusView } from '../api-types';
import { ApiError, CliError } from '../cli-error';
import { CliContext } from '../cli-context';
import { ExitCode } from '../exit-codes';
import { formatBytes, ProgressBar } from './progress-bar';
import { IndexedArtifact, readReleaseIndex } from './release-index';
import { TransportError } from './streaming-upload';
import { releasePath } from '../commands/options';

export interface PublishOptions {
  /** bytes per resumable chunk (one PUT each) */
  chunkSize: number;
  /** attempts after a failed chunk before giving up (counter resets whenever bytes got through) */
  retries: number;
  /** first wait before a retry; doubles each time */
  retryDelayMs: number;
  progress: boolean;
}

export type ArtifactOutcome = 'uploaded' | 'resumed' | 'already-stored';

export interface PublishResult {
  name: string;
  version: string;
  releaseCreated: boolean;
  artifacts: {
    file: string;
    kind: string;
    size: number;
    outcome: ArtifactOutcome;
    resumedAt: number | null;
    bytesSent: number;
  }[];
}

const MAX_CHUNK_FAILURES_MESSAGE = 'giving up after repeated failures';

/**
 * Publishes a directory built by `cowroot-release build`: creates the release when missing, then uploads
 * each artifact with its signed manifest through the server's resumable upload (PUT with Content-Range,
 * docs in apps/server/src/releases/artifacts.controller.ts). An upload interrupted earlier (Ctrl-C, lost
 * link, crashed CLI) continues at the offset the server reports; artifacts already stored are skipped.
 */
export class ReleasePublisher {
  constructor(
    private readonly client: ApiClient,
    private readonly context: CliContext,
    private readonly options: PublishOptions,
  ) {}

  async publish(dir: string): Promise<PublishResult> {
    const index = await readReleaseIndex(dir);
    const ref = { name: index.name, version: index.version };
    const { release, created } = await this.ensureRelease(ref, index.description);
    const stored = new Map(release.artifacts.map((artifact) => [artifact.file, artifact]));
    const result: PublishResult = { ...ref, releaseCreated: created, artifacts: [] };
    for (const artifact of index.artifacts) {
      const existing = stored.get(artifact.file);
      if (existing && existing.sha256 === artifact.sha256) {
        result.artifacts.push({
          file: artifact.file,
          kind: artifact.kind,
          size: artifact.size,
          outcome: 'already-stored',
          resumedAt: null,
          bytesSent: 0,
        });
        this.note(`${artifact.file}  already stored (${formatBytes(artifact.size)})`);
        continue;
      }
      result.artifacts.push(await this.uploadArtifact(dir, ref, artifact));
    }
    return result;
  }

  private async ensureRelease(
    ref: { name: string; version: string },
    description: string | null,
  ): Promise<{ release: ReleaseWithArtifactsView; created: boolean }> {
    try {
      return { release: await this.client.get<ReleaseWithArtifactsView>(releasePath(ref)), created: false };
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
    }
    try {
      await this.client.post('/api/v1/releases', {
        name: ref.name,
        version: ref.version,
        ...(description ? { description } : {}),
      });
      this.note(`created release ${ref.name}@${ref.version}`);
      return { release: await this.client.get<ReleaseWithArtifactsView>(releasePath(ref)), created: true };
    } catch (error) {
      // someone else created it in between: publish into it
      if (error instanceof ApiError && error.status === 409)
        return { release: await this.client.get<ReleaseWithArtifactsView>(releasePath(ref)), created: false };
      throw error;
    }
  }

  private async uploadArtifact(
    dir: string,
    ref: { name: string; version: string },
    artifact: IndexedArtifact,
  ): Promise<PublishResult['artifacts'][number]> {
    const path = `${releasePath(ref)}/artifacts/${encodeURIComponent(artifact.file)}`;
    const manifest = (await readFile(join(dir, artifact.manifest))).toString('base64');
    const signature = (await readFile(join(dir, artifact.signature), 'utf8')).trim();
    const headers = {
      'Content-Type': 'application/octet-stream',
      'X-Cowroot-Manifest': manifest,
      'X-Cowroot-Signature': signature,
    };
    const size = artifact.size;

    let offset = await this.serverOffset(path);
    if (offset >= size) offset = 0; // every byte arrived but nothing was committed: start over
    const resumedAt = offset > 0 ? offset : null;
    if (resumedAt !== null)
      this.note(
        `${artifact.file}  resuming the interrupted upload at byte ${offset} of ${size} (${formatBytes(offset)})`,
      );
    const bar = this.options.progress ? new ProgressBar(this.context.io.stderr, artifact.file, size, offset) : null;
    /** bytes of chunks the server stored (a refused or cut chunk does not count) */
    let bytesSent = 0;
    let chunksStored = 0;
    let failures = 0;

    for (;;) {
      const end = Math.min(size, offset + this.options.chunkSize) - 1;
      const chunkStart = offset;
      const body = createReadStream(join(dir, artifact.file), { start: offset, end });
      let sentInChunk = 0;
      body.on('data', (chunk: Buffer | string) => {
        sentInChunk += chunk.length;
        bar?.set(chunkStart + sentInChunk);
      });
      let answer;
      try {
        answer = await this.client.upload(
          'PUT',
          path,
          { ...headers, 'Content-Range': `bytes ${offset}-${end}/${size}` },
          body,
          end - offset + 1,
        );
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
        failures = await this.failed(
          failures,
          artifact.file,
          `connection lost (${describeFetchFailure(error)})`,
          bar,
          () =>
            CliError.unreachable(
              this.client.server,
              `${describeFetchFailure(error)}; run the same command again to resume ${artifact.file}`,
            ),
        );
        offset = await this.serverOffset(path);
        continue;
      }
      const json = parseJson(answer.text);
      if (answer.status === 201 || answer.status === 200) {
        bytesSent += answer.status === 201 ? sentInChunk : 0;
        const stored = json as ArtifactView;
        bar?.finish(
          `${answer.status === 201 ? 'uploaded' : 'already stored'} (${formatBytes(size)}, sha256 ${stored?.sha256?.slice(0, 12) ?? '?'}…)`,
        );
        return {
          file: artifact.file,
          kind: artifact.kind,
          size,
          outcome: answer.status === 200 ? 'already-stored' : resumedAt !== null ? 'resumed' : 'uploaded',
          resumedAt,
          bytesSent,
        };
      }
      if (answer.status === 202) {
        bytesSent += sentInChunk;
        chunksStored++;
        const status = json as UploadStatusView;
        if (status.offset > offset) failures = 0;
        offset = status.offset;
        continue;
      }
      const error = errorFrom(answer.status, answer.statusText, answer.text);
      const serverOffset = error instanceof ApiError ? offsetIn(error.details) : null;
      // 409/400 with details.offset: the server holds a different offset (a chunk cut short, a stale partial)
      // 409 without an offset right after a lost connection, or as the first answer when resuming: the server
      // may still be closing the cut-off chunk of the earlier attempt ("another chunk … is being received")
      const justInterrupted = failures > 0 || (resumedAt !== null && chunksStored === 0);
      const retryable =
        ((answer.status === 409 || answer.status === 400) && serverOffset !== null) ||
        (answer.status === 409 && justInterrupted) ||
        (answer.status >= 500 && answer.status !== 507);
      if (!retryable) {
        bar?.abandon();
        throw error;
      }
      failures = await this.failed(failures, artifact.file, error.message, bar, () => error);
      offset = serverOffset ?? (await this.serverOffset(path));
      if (offset >= size) offset = 0;
    }
  }

  /** Counts a failed chunk, waits with backoff, or throws `giveUp()` once the retries are spent. */
  private async failed(
    failures: number,
    file: string,
    why: string,
    bar: ProgressBar | null,
    giveUp: () => CliError,
  ): Promise<number> {
    bar?.abandon();
    if (failures >= this.options.retries) {
      this.note(`${file}  ${MAX_CHUNK_FAILURES_MESSAGE}: ${why}`);
      throw giveUp();
    }
    const wait = this.options.retryDelayMs * 2 ** failures;
    this.note(`${file}  ${why}; retrying in ${(wait / 1000).toFixed(1)} s (${failures + 1}/${this.options.retries})`);
    await this.context.sleep(wait);
    if (this.context.interrupted)
      throw new CliError(`interrupted; run the same command again to resume ${file}`, ExitCode.Failure);
    return failures + 1;
  }

  /** Bytes of a resumable upload the server holds, 0 when none is in progress. */
  private async serverOffset(path: string): Promise<number> {
    try {
      return (await this.client.get<UploadStatusView>(`${path}/upload`)).offset;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return 0;
      throw error;
    }
  }

  private note(text: string): void {
    this.context.err(text);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function offsetIn(details: unknown): number | null {
  const offset = (details as { offset?: unknown } | undefined)?.offset;
  return typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0 ? offset : null;
}
