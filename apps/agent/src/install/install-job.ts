import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
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
import { DeviceError, SnapshotStore } from '@cowroot/device';
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
 * `zstd -d` reading the spool file itself (its stdin is the file's descriptor: no copy through node), its
 * output passed on in a stream that ends cleanly ONLY when zstd exited 0. A failing zstd makes the stream
 * error, so btrfs receive is killed instead of finishing a truncated stream. Receive progress is zstd's
 * position in the file, read from the descriptor it shares with us.
 */
function decompressFile(spool: string, onProgress: (bytesRead: number) => void): { output: Readable; done: Promise<void> } {
  const fd = openSync(spool, 'r');
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: [fd, 'pipe', 'pipe'] });
  const output = new PassThrough({ highWaterMark: 1024 * 1024 });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-2048);
  });
  child.stdout!.pipe(output, { end: false });
  const poll = setInterval(() => {
    const position = fdPosition(fd);
    if (position !== null) onProgress(position);
  }, 500);
  const done = new Promise<void>((resolve, reject) => {
    let stdoutEnded = false;
    let exitCode: number | null | undefined;
    let settled = false;
    const finish = (error: DeviceError | null) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      closeSync(fd);
      if (error) {
        output.destroy(error);
        reject(error);
      } else {
        output.end();
        resolve();
      }
    };
    const settle = () => {
      if (!stdoutEnded || exitCode === undefined) return;
      finish(exitCode === 0 ? null : new DeviceError(ErrorCode.ReceiveFailed, `zstd -d failed (exit ${exitCode}): ${stderr.trim()}`));
    };
    child.stdout!.on('end', () => {
      stdoutEnded = true;
      settle();
    });
    child.on('error', (error) => finish(new DeviceError(ErrorCode.ReceiveFailed, `cannot run zstd: ${error.message}`)));
    child.on('exit', (code) => {
      exitCode = code;
      settle();
    });
  });
  output.on('close', () => {
    // btrfs stopped reading (it failed, or the job was canceled): stop zstd too
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { output, done };
}

/**
 * install (docs/agent.md §4): verify the signed manifest with the pinned key, check the parent is held,
 * download to a spool file in staging/ while hashing, compare size and sha256 with the manifest, and only
 * then stream the file through `zstd -d` into SnapshotStore.receive (which checks received_uuid). Every
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

  private async receive(
    spool: string,
    manifest: ArtifactManifest,
    snapshotId: string,
    progress: ProgressSink,
    signal: AbortSignal,
  ): Promise<SnapshotInfo> {
    let stream: Readable | undefined;
    let decompressed: Promise<void> = Promise.resolve();
    if (manifest.compression === 'zstd') {
      const zstd = decompressFile(spool, (read) => progress(JobPhase.Receive, read, manifest.size));
      stream = zstd.output;
      decompressed = zstd.done;
    }
    decompressed.catch(() => undefined); // awaited below; a failure also reaches receive through the stream
    // an uncompressed stream: btrfs reads the verified spool file itself (its descriptor is btrfs's stdin)
    const snapshot = await this.deps.store.receive(manifest.compression === 'zstd' ? stream! : { file: spool }, {
      snapshotId,
      release: manifest.release,
      expectedReceivedUuid: manifest.snapshotUuid,
      signal,
    });
    try {
      await decompressed;
    } catch (error) {
      // btrfs accepted a stream zstd did not finish: do not keep what it made
      await this.deps.store.delete(snapshot.id, []).catch(() => undefined);
      throw error;
    }
    progress(JobPhase.Receive, manifest.size, manifest.size);
    return snapshot;
  }
}
