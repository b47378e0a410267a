import { readFileSync } from 'node:fs';
import { open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyObject } from 'node:crypto';
import {
  ArtifactKind,
  ArtifactManifest,
  ErrorCode,
  InstallCommand,
  JobPhase,
  SnapshotInfo,
  isSnapshotId,
  parseManifest,
  verifyManifestSignature,
} from '@cowroot/protocol';
import { DeviceError, SnapshotStore, StdinFilter } from '@cowroot/device';
import { ArtifactDownloader } from '../download/artifact-downloader';
import { AgentLogger } from '../logger';

export interface InstallJobDeps {
  store: SnapshotStore;
  downloader: ArtifactDownloader;
  releasePublicKey: KeyObject;
  deviceId: string;
  credential: string;
  /** scheme://host[:port] of the configured server: the only place artifacts come from */
  artifactOrigin: string;
  ca: Buffer | null;
  logger: AgentLogger;
}

export interface InstallOutcome {
  snapshot: SnapshotInfo;
  /** bytes that came over the network (0 when the release was already on the device) */
  bytesDownloaded: number;
}

export type ProgressSink = (phase: JobPhase, bytesDone: number, bytesTotal: number) => void;

/** Progress at a sane rate: at most every `intervalMs`, or every `step` of the total, plus the end. */
export function rateLimitedProgress(sink: ProgressSink, intervalMs = 2000, step = 0.05): ProgressSink {
  let lastPhase: JobPhase | null = null;
  let lastAt = 0;
  let lastFraction = 0;
  return (phase, done, total) => {
    const now = Date.now();
    const fraction = total > 0 ? done / total : 0;
    const finished = total > 0 && done >= total;
    if (phase !== lastPhase || finished || now - lastAt >= intervalMs || fraction - lastFraction >= step) {
      if (phase === lastPhase && finished && lastFraction >= 1) return;
      lastPhase = phase;
      lastAt = now;
      lastFraction = fraction;
      sink(phase, done, total);
    }
  };
}

/** The manifest, trusted: its signature by the pinned key holds, and it parses. */
export function verifyOffer(command: InstallCommand, publicKey: KeyObject): ArtifactManifest {
  const manifestBytes = Buffer.from(command.artifact.manifest, 'base64');
  if (!verifyManifestSignature(manifestBytes, command.artifact.signature, publicKey)) {
    throw new DeviceError(
      ErrorCode.SignatureInvalid,
      'the manifest signature does not verify with the pinned release key',
    );
  }
  const parsed = parseManifest(manifestBytes);
  if (!parsed.ok) throw new DeviceError(ErrorCode.MalformedMessage, `signed manifest is invalid: ${parsed.message}`);
  return parsed.value;
}

/** The abort reason of an agent that stops (not a cancel): a download interrupted by it keeps its spool. */
export const AGENT_STOPPING = 'agent-stopping';

/** How long a partial download survives agent restarts waiting to be resumed. */
export const SPOOL_KEEP_MS = 24 * 60 * 60 * 1000;

const SPOOL_NAME = /^download-([0-9a-f]{64})\.part$/;

/** staging/download-<sha256>.part: named by content, so any later install of the same artifact resumes it. */
export function spoolName(sha256: string): string {
  return `download-${sha256}.part`;
}

/**
 * For the garbage collector at agent start: a partial download younger than SPOOL_KEEP_MS stays, so an
 * install of the same artifact after a restart (service stop, crash, power cut) resumes it.
 */
export async function isResumableSpool(stagingDir: string, name: string, now = Date.now()): Promise<boolean> {
  if (!SPOOL_NAME.test(name)) return false;
  const info = await stat(join(stagingDir, name)).catch(() => null);
  return info !== null && info.isFile() && now - info.mtimeMs < SPOOL_KEEP_MS;
}

const ZSTD_DECOMPRESS: StdinFilter = { command: 'zstd', args: ['-d', '-c', '-q'] };

/** Byte offset of an open file descriptor, shared with the child it was handed to (Linux /proc). */
function fdPosition(fd: number): number | null {
  try {
    const match = /^pos:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * install (docs/agent.md §4): verify the signed manifest with the pinned key, check the parent is held,
 * download to a spool file in staging/ while hashing, compare size and sha256 with the manifest, and only
 * then hand the file (through `zstd -d`) to SnapshotStore.receive (which checks received_uuid). Every
 * failure leaves the pool as it was: SnapshotStore deletes a partial receive, and the spool file is
 * removed — unless the agent is stopping, when it stays for the next install of the same artifact to
 * resume (docs/agent.md §4.1), as it does after a crash or power cut.
 */
export class InstallJob {
  constructor(private readonly deps: InstallJobDeps) {}

  async run(command: InstallCommand, progress: ProgressSink, signal: AbortSignal): Promise<InstallOutcome> {
    const { store } = this.deps;
    const manifest = verifyOffer(command, this.deps.releasePublicKey);
    const snapshotId = command.snapshotId ?? `${manifest.release.name}-${manifest.release.version}`;
    if (!isSnapshotId(snapshotId)) {
      throw new DeviceError(
        ErrorCode.MalformedMessage,
        `cannot make a snapshot id from release ${manifest.release.name} ${manifest.release.version}`,
      );
    }

    // already here (a re-offer after a fallback, or a redelivery whose journal entry was trimmed): no download
    const held = await store.findByReceivedUuid(manifest.snapshotUuid);
    if (held) {
      this.deps.logger.info('release already on the device, not downloading', {
        commandId: command.commandId,
        snapshot: held.id,
      });
      return { snapshot: held, bytesDownloaded: 0 };
    }
    if (await store.get(snapshotId)) {
      throw new DeviceError(
        ErrorCode.ReceiveFailed,
        `a different snapshot named ${snapshotId} is already on the device`,
      );
    }
    let parentId: string | null = null;
    if (manifest.kind !== ArtifactKind.Full) {
      const parent = manifest.parent ? await store.findByReceivedUuid(manifest.parent.snapshotUuid) : null;
      parentId = parent?.id ?? null;
      if (!parent) {
        throw new DeviceError(
          ErrorCode.ParentMissing,
          `incremental artifact needs release ${manifest.parent?.release.name} ${manifest.parent?.release.version} (received_uuid ${manifest.parent?.snapshotUuid}), which is not on the device`,
        );
      }
    }
    const free = await store.freeBytes().catch(() => null);
    // a delta is received as the plain stream it rebuilds to: that much must fit
    const needed = Math.max(manifest.size, manifest.reconstructs?.size ?? 0);
    if (free !== null && free < needed) {
      throw new DeviceError(ErrorCode.DiskFull, `the artifact needs ${needed} bytes, the pool has ${free} free`);
    }

    await store.init();
    const spool = join(store.stagingDir, spoolName(manifest.sha256));
    await this.removeOtherSpools(store.stagingDir, spool);
    let keepSpool = false;
    try {
      const download = await this.deps.downloader.download({
        url: command.artifact.url,
        allowedOrigin: this.deps.artifactOrigin,
        destination: spool,
        expectedSize: manifest.size,
        username: this.deps.deviceId,
        password: this.deps.credential,
        ca: this.deps.ca,
        signal,
        onProgress: (done, total) => progress(JobPhase.Download, done, total),
      });
      if (download.bytesResumed > 0) {
        this.deps.logger.info('download resumed from an earlier run', {
          commandId: command.commandId,
          bytes: download.bytesResumed,
        });
      }
      if (download.size !== manifest.size) {
        throw new DeviceError(
          ErrorCode.SizeMismatch,
          `downloaded ${download.size} bytes, the manifest says ${manifest.size}`,
        );
      }
      if (download.sha256 !== manifest.sha256) {
        throw new DeviceError(
          ErrorCode.Sha256Mismatch,
          `sha256 of the download is ${download.sha256}, the manifest says ${manifest.sha256}`,
        );
      }
      progress(JobPhase.Verify, manifest.size, manifest.size);
      const snapshot = await this.receive(spool, manifest, snapshotId, parentId, progress, signal);
      this.deps.logger.info('snapshot received', {
        commandId: command.commandId,
        snapshot: snapshot.id,
        receivedUuid: snapshot.receivedUuid,
      });
      return { snapshot, bytesDownloaded: download.bytesTransferred };
    } catch (error) {
      // an agent that stops (service stop, reboot) keeps what came over the network for the next run;
      // a failure, even of the network, cleans staging as every bad input does
      keepSpool = signal.reason === AGENT_STOPPING;
      throw error;
    } finally {
      if (!keepSpool) await rm(spool, { force: true });
    }
  }

  /** One download at a time: a partial spool of another artifact only takes pool space. */
  private async removeOtherSpools(stagingDir: string, keep: string): Promise<void> {
    for (const name of await readdir(stagingDir).catch(() => [] as string[])) {
      if (SPOOL_NAME.test(name) && join(stagingDir, name) !== keep) await rm(join(stagingDir, name), { force: true });
    }
  }

  /**
   * btrfs receive reads the verified spool: as its stdin descriptor, or through `zstd -d` connected to it
   * by an OS pipe, so no byte of the stream passes through Node. Progress is the read position in the
   * spool, which the reading process shares with the descriptor we opened.
   */
  private async receive(
    spool: string,
    manifest: ArtifactManifest,
    snapshotId: string,
    parentId: string | null,
    progress: ProgressSink,
    signal: AbortSignal,
  ): Promise<SnapshotInfo> {
    const file = await open(spool, 'r');
    const poll = setInterval(() => {
      const position = fdPosition(file.fd);
      if (position !== null) progress(JobPhase.Receive, position, manifest.size);
    }, 500);
    try {
      const options = { snapshotId, release: manifest.release, expectedReceivedUuid: manifest.snapshotUuid, signal };
      // a delta is rebuilt on the fly against the parent it names (docs/agent.md §4.3)
      const snapshot =
        manifest.kind === ArtifactKind.Delta && parentId && manifest.reconstructs
          ? await this.deps.store.receiveDelta(
              { fd: file.fd, compression: manifest.compression },
              { parentId, reconstructs: manifest.reconstructs },
              options,
            )
          : await this.deps.store.receive(
              { fd: file.fd, ...(manifest.compression === 'zstd' ? { through: ZSTD_DECOMPRESS } : {}) },
              options,
            );
      progress(JobPhase.Receive, manifest.size, manifest.size);
      return snapshot;
    } finally {
      clearInterval(poll);
      await file.close();
    }
  }
}
