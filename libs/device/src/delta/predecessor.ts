import { createHash } from 'node:crypto';
import { closeSync, createReadStream, lstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '../device-error';

/** What a section says of the file it was made against (PATCH_BEGIN's fields; a batch's sources map to it). */
export interface PredecessorRef {
  sourcePath: string;
  sourceSize: number;
  sourceSha256: string;
}

/** Predecessors up to this size are read in one synchronous read (the reconstructor's small-file path). */
export const SMALL_PREDECESSOR_BYTES = 1024 * 1024;
const READ_CHUNK = 64 * 1024;

/**
 * The file a patch section was made against, in the parent snapshot the device holds: a regular file
 * inside the parent (no `..`, no symlink out of it) with the size and sha256 the section names. A
 * mismatch means the delta meets the wrong parent (or a parent changed behind our back): nothing of the
 * patch is decoded against it.
 *
 * Synchronous on purpose: a package upgrade has thousands of small files, and each asynchronous call is
 * a round trip through libuv's thread pool that costs more than the lstat or the read itself; the event
 * loop is blocked for microseconds per file (large files are read in 64 KiB chunks).
 */
export function locatePredecessor(
  parentRoot: string,
  ref: PredecessorRef,
  realRoot = realpathSync.native(parentRoot),
  /** directories already found inside the parent (most predecessors share a few) */
  insideDirs: Set<string> = new Set(),
): string {
  const parts = ref.sourcePath.split('/');
  if (!ref.sourcePath || isAbsolute(ref.sourcePath) || parts.some((p) => p === '..' || p === '.' || p === '')) {
    throw new DeviceError(
      ErrorCode.DeltaCorrupt,
      `delta names an invalid predecessor path ${JSON.stringify(ref.sourcePath)}`,
    );
  }
  // the parts are checked above, so plain concatenation is the normalized path (path.join's normalizing
  // showed up in profiles: thousands of files per upgrade)
  const path = `${parentRoot}/${ref.sourcePath}`;
  const mismatch = (why: string) => mismatchOf(ref, why);
  let info;
  try {
    info = lstatSync(path);
  } catch {
    throw mismatch('does not exist');
  }
  if (!info.isFile()) throw mismatch('is not a regular file');
  // The file itself is no symlink (lstat), so it is inside the parent when its directory is: realpath(3)
  // of the directory in one call, not node's JavaScript walk that lstat()s every component, and a prefix
  // test rather than path.relative (both paths are canonical).
  const dir = path.slice(0, path.lastIndexOf('/'));
  if (!insideDirs.has(dir)) {
    const real = realpathSync.native(dir);
    if (real !== realRoot && !real.startsWith(`${realRoot}/`)) throw mismatch('lies outside the parent');
    insideDirs.add(dir);
  }
  if (info.size !== ref.sourceSize) throw mismatch(`has ${info.size} bytes, the delta expects ${ref.sourceSize}`);
  return path;
}

function mismatchOf(ref: PredecessorRef, why: string): DeviceError {
  return new DeviceError(
    ErrorCode.DeltaBaseMismatch,
    `predecessor ${ref.sourcePath} in the parent snapshot ${why}; the delta was built against another parent`,
  );
}

/** Its sha256, asynchronously (a large predecessor, hashed while its patch decodes). */
export async function verifyPredecessorContent(path: string, ref: PredecessorRef): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) hash.update(chunk as Buffer);
  if (hash.digest('hex') !== ref.sourceSha256) throw mismatchOf(ref, 'has other content (sha256 differs)');
}

/**
 * Reads a located predecessor synchronously and, unless `check` is false, checks its sha256 before
 * returning: `sourceSize` bytes (its size was checked by locatePredecessor), each read handed to `sink` as
 * a view of `buffer`. A file that fits in `buffer` lands whole at its start (short reads continue where
 * they stopped); a larger one goes through it chunk by chunk, each read overwriting the last. The caller's
 * buffer bounds the memory whatever the file's size, and lets it gather many small files before writing
 * them out. Unchecked reads are for bytes that other checks cover (a batch's dictionary: see
 * DeltaSections.batch), hashed only when those fail (verifyPredecessorContent).
 */
export function readPredecessorSync(
  path: string,
  ref: PredecessorRef,
  buffer: Buffer,
  sink: (bytes: Buffer) => void,
  check = true,
): void {
  const hash = check ? createHash('sha256') : null;
  const fits = ref.sourceSize <= buffer.length;
  const fd = openSync(path, 'r');
  let total = 0;
  try {
    while (total < ref.sourceSize) {
      const offset = fits ? total : 0;
      const n = readSync(fd, buffer, offset, Math.min(buffer.length - offset, ref.sourceSize - total), total);
      if (n === 0) throw mismatchOf(ref, 'shrank while it was read');
      const bytes = buffer.subarray(offset, offset + n);
      hash?.update(bytes);
      sink(bytes);
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  if (hash && hash.digest('hex') !== ref.sourceSha256) throw mismatchOf(ref, 'has other content (sha256 differs)');
}

/** A small predecessor whole, checked (the copy of a file rewritten unchanged). */
export function readSmallPredecessor(path: string, ref: PredecessorRef): Buffer {
  const whole = Buffer.allocUnsafe(ref.sourceSize);
  readPredecessorSync(path, ref, whole, () => undefined);
  return whole;
}
