import { readFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
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
    throw new DeviceError(ErrorCode.SignatureInvalid, 'the manifest signature does not verify with the pinned release key');
  }
  const parsed = parseManifest(manifestBytes);
  if (!parsed.ok) throw new DeviceError(ErrorCode.MalformedMessage, `signed manifest is invalid: ${parsed.message}`);
  return parsed.value;
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
 * failure leaves the pool as it was: the spool file is removed, SnapshotStore deletes a partial receive.
 */
export class InstallJob {
  constructor(private readonly deps: InstallJobDeps) {}

  async run(command: InstallCommand, progress: ProgressSink, signal: AbortSignal): Promise<InstallOutcome> {
    const { store } = this.deps;
    const manifest = verifyOffer(command, this.deps.releasePublicKey);
    const snapshotId = command.snapshotId ?? `${manifest.release.name}-${manifest.release.version}`;
    if (!isSnapshotId(snapshotId)) {
      throw new DeviceError(ErrorCode.MalformedMessage, `cannot make a snapshot id from release ${manifest.release.name} ${manifest.release.version}`);
    }

    // already here (a re-offer after a fallback, or a redelivery whose journal entry was trimmed): no download
    const held = await store.findByReceivedUuid(manifest.snapshotUuid);
    if (held) {
      this.deps.logger.info('release already on the device, not downloading', { commandId: command.commandId, snapshot: held.id });
      return { snapshot: held, bytesDownloaded: 0 };
    }
    if (await store.get(snapshotId)) {
      throw new DeviceError(ErrorCode.ReceiveFailed, `a different snapshot named ${snapshotId} is already on the device`);
    }
    if (manifest.kind === ArtifactKind.Incremental) {
      const parent = manifest.parent ? await store.findByReceivedUuid(manifest.parent.snapshotUuid) : null;
      if (!parent) {
        throw new DeviceError(
          ErrorCode.ParentMissing,
          `incremental artifact needs release ${manifest.parent?.release.name} ${manifest.parent?.release.version} (received_uuid ${manifest.parent?.snapshotUuid}), which is not on the device`,
        );
      }
    }
    const free = await store.freeBytes().catch(() => null);
    if (free !== null && free < manifest.size) {
      throw new DeviceError(ErrorCode.DiskFull, `the artifact needs ${manifest.size} bytes, the pool has ${free} free`);
    }

    await store.init();
    const spool = join(store.stagingDir, `download-${command.commandId}.part`);
    try {
      const download = await this.deps.downloader.download({
        url: command.artifact.url,
        destination: spool,
        expectedSize: manifest.size,
        username: this.deps.deviceId,
        password: this.deps.credential,
        ca: this.deps.ca,
        signal,
        onProgress: (done, total) => progress(JobPhase.Download, done, total),
      });
      if (download.size !== manifest.size) {
        throw new DeviceError(ErrorCode.SizeMismatch, `downloaded ${download.size} bytes, the manifest says ${manifest.size}`);
      }
      if (download.sha256 !== manifest.sha256) {
        throw new DeviceError(ErrorCode.Sha256Mismatch, `sha256 of the download is ${download.sha256}, the manifest says ${manifest.sha256}`);
      }
      progress(JobPhase.Verify, manifest.size, manifest.size);
      const snapshot = await this.receive(spool, manifest, snapshotId, progress, signal);
      this.deps.logger.info('snapshot received', { commandId: command.commandId, snapshot: snapshot.id, receivedUuid: snapshot.receivedUuid });
      return { snapshot, bytesDownloaded: download.bytesTransferred };
    } finally {
      await rm(spool, { force: true });
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
    progress: ProgressSink,
    signal: AbortSignal,
  ): Promise<SnapshotInfo> {
    const file = await open(spool, 'r');
    const poll = setInterval(() => {
      const position = fdPosition(file.fd);
      if (position !== null) progress(JobPhase.Receive, position, manifest.size);
    }, 500);
    try {
      const snapshot = await this.deps.store.receive(
        { fd: file.fd, ...(manifest.compression === 'zstd' ? { through: ZSTD_DECOMPRESS } : {}) },
        { snapshotId, release: manifest.release, expectedReceivedUuid: manifest.snapshotUuid, signal },
      );
      progress(JobPhase.Receive, manifest.size, manifest.size);
      return snapshot;
    } finally {
      clearInterval(poll);
      await file.close();
    }
  }
}
