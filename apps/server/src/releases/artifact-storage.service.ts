import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ServerConfig } from '../config/server-config';

/** What a resumable upload remembers between requests, next to its partial file. */
export interface PartialUploadState {
  /** sha256 of the manifest bytes the upload was started with: every chunk must carry the same */
  manifestSha256: string;
  /** total bytes the manifest announces */
  size: number;
  startedAt: string;
}

/** One-shot temp files older than this at boot belong to no living request. */
const STALE_TEMP_MS = 24 * 3600_000;

/** A resumable upload nobody continued for this long is given up at the next boot. */
const ABANDONED_PARTIAL_MS = 7 * 24 * 3600_000;

/**
 * The artifact files under STORAGE_DIR:
 *   releases/<release id>/<file>          committed artifacts (by id, so a deleted and re-created
 *                                          release of the same name never meets old files)
 *   incoming/<uuid>.tmp                    one-shot uploads in flight
 *   incoming/resumable/<release id>/<file>.part (+ .json)   resumable uploads between chunks
 * incoming/ lives on the same filesystem, so placing an upload is an atomic rename.
 */
@Injectable()
export class ArtifactStorage implements OnModuleInit {
  private readonly logger = new Logger(ArtifactStorage.name);

  constructor(private readonly config: ServerConfig) {}

  async onModuleInit(): Promise<void> {
    await mkdir(this.incomingDir, { recursive: true });
    await mkdir(join(this.config.storageDir, 'releases'), { recursive: true });
    await this.removeStaleTempFiles();
  }

  private get incomingDir(): string {
    return join(this.config.storageDir, 'incoming');
  }

  artifactPath(releaseId: string, file: string): string {
    return join(this.config.storageDir, 'releases', releaseId, file);
  }

  newTempPath(): string {
    return join(this.incomingDir, `${randomUUID()}.tmp`);
  }

  partialPath(releaseId: string, file: string): string {
    return join(this.incomingDir, 'resumable', releaseId, `${file}.part`);
  }

  /** Atomically moves a verified upload to its final place. */
  async place(tempPath: string, releaseId: string, file: string): Promise<string> {
    const target = this.artifactPath(releaseId, file);
    await mkdir(join(this.config.storageDir, 'releases', releaseId), { recursive: true });
    await rename(tempPath, target);
    return target;
  }

  async removeArtifact(releaseId: string, file: string): Promise<void> {
    await rm(this.artifactPath(releaseId, file), { force: true });
  }

  async removeRelease(releaseId: string): Promise<void> {
    await rm(join(this.config.storageDir, 'releases', releaseId), { recursive: true, force: true });
    await rm(join(this.incomingDir, 'resumable', releaseId), { recursive: true, force: true });
  }

  async readPartial(releaseId: string, file: string): Promise<(PartialUploadState & { offset: number }) | null> {
    const path = this.partialPath(releaseId, file);
    try {
      const state = JSON.parse(await readFile(`${path}.json`, 'utf8')) as PartialUploadState;
      const { size } = await stat(path);
      return { ...state, offset: size };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  /** Starts (or restarts) a resumable upload: an empty partial file and its state. */
  async startPartial(releaseId: string, file: string, state: PartialUploadState): Promise<string> {
    const path = this.partialPath(releaseId, file);
    await mkdir(join(this.incomingDir, 'resumable', releaseId), { recursive: true });
    await writeFile(path, Buffer.alloc(0));
    await writeFile(`${path}.json`, JSON.stringify(state));
    return path;
  }

  async removePartial(releaseId: string, file: string): Promise<void> {
    const path = this.partialPath(releaseId, file);
    await rm(path, { force: true });
    await rm(`${path}.json`, { force: true });
  }

  /** The state file goes when the partial is consumed (renamed into place). */
  async removePartialState(releaseId: string, file: string): Promise<void> {
    await rm(`${this.partialPath(releaseId, file)}.json`, { force: true });
  }

  async sha256Of(path: string): Promise<string> {
    const hash = createHash('sha256');
    await pipeline(createReadStream(path), hash);
    return hash.digest('hex');
  }

  private async removeStaleTempFiles(): Promise<void> {
    const now = Date.now();
    for (const entry of await readdir(this.incomingDir)) {
      if (!entry.endsWith('.tmp')) continue;
      const path = join(this.incomingDir, entry);
      const { mtimeMs } = await stat(path);
      if (now - mtimeMs > STALE_TEMP_MS) {
        await rm(path, { force: true });
        this.logger.warn(`removed stale upload temp file ${path}`);
      }
    }
    const resumableDir = join(this.incomingDir, 'resumable');
    const partials = await readdir(resumableDir, { recursive: true }).catch(() => [] as string[]);
    for (const entry of partials) {
      if (!entry.endsWith('.part')) continue;
      const path = join(resumableDir, entry);
      const { mtimeMs } = await stat(path);
      if (now - mtimeMs > ABANDONED_PARTIAL_MS) {
        await rm(path, { force: true });
        await rm(`${path}.json`, { force: true });
        this.logger.warn(`removed abandoned resumable upload ${path}`);
      }
    }
  }
}
