import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '../device-error';
import { PatchBegin } from './delta-format';

/**
 * The file a patch section was made against, in the parent snapshot the device holds: a regular file
 * inside the parent (no `..`, no symlink out of it) with the size and sha256 the section names. A
 * mismatch means the delta meets the wrong parent (or a parent changed behind our back): nothing of the
 * patch is decoded against it.
 */
export async function resolvePredecessor(parentRoot: string, begin: PatchBegin): Promise<string> {
  const path = await locatePredecessor(parentRoot, begin);
  await verifyPredecessorContent(path, begin);
  return path;
}

function mismatchOf(begin: PatchBegin, why: string): DeviceError {
  return new DeviceError(
    ErrorCode.DeltaBaseMismatch,
    `predecessor ${begin.sourcePath} in the parent snapshot ${why}; the delta was built against another parent`,
  );
}

/** The checks that need no reading: path, type, containment, size. */
export async function locatePredecessor(parentRoot: string, begin: PatchBegin): Promise<string> {
  const parts = begin.sourcePath.split('/');
  if (!begin.sourcePath || isAbsolute(begin.sourcePath) || parts.some((p) => p === '..' || p === '.' || p === '')) {
    throw new DeviceError(
      ErrorCode.DeltaCorrupt,
      `delta names an invalid predecessor path ${JSON.stringify(begin.sourcePath)}`,
    );
  }
  const path = join(parentRoot, begin.sourcePath);
  const mismatch = (why: string) => mismatchOf(begin, why);
  const info = await lstat(path).catch(() => null);
  if (!info) throw mismatch('does not exist');
  if (!info.isFile()) throw mismatch('is not a regular file');
  const inside = relative(await realpath(parentRoot), await realpath(path));
  if (inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside)) throw mismatch('lies outside the parent');
  if (info.size !== begin.sourceSize) throw mismatch(`has ${info.size} bytes, the delta expects ${begin.sourceSize}`);
  return path;
}

/** Its sha256 (the reading part, which the reconstructor runs while the patch decodes). */
export async function verifyPredecessorContent(path: string, begin: PatchBegin): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) hash.update(chunk as Buffer);
  if (hash.digest('hex') !== begin.sourceSha256) throw mismatchOf(begin, 'has other content (sha256 differs)');
}
