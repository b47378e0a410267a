import { createReadStream } from 'node:fs';
import { ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '../device-error';
import { ByteReader } from './byte-reader';
import { WriteStub, zstdFrameHasChecksum } from './delta-format';
import { PredecessorRef, verifyPredecessorContent } from './predecessor';
import { joinWrite } from './send-stream';

/**
 * Sections against a predecessor above SMALL_PREDECESSOR_BYTES (predecessor.ts): never read whole, and
 * hashed only on failure (or beside the decode, for a patch frame without a checksum), so that the bytes
 * pass once through the page cache and the node process.
 */

/**
 * A large file rewritten unchanged: its bytes are the predecessor's, streamed from the parent into the
 * section's writes. Not hashed here: other bytes in it give WRITEs whose crc32c `btrfs receive` refuses
 * (or a stream whose sha256 is not the manifest's), and only then is it hashed, to name it
 * (DeltaSections.explainMismatch); hashing it always was a second pass over it in the node process.
 */
export function copyLargePredecessor(
  source: string,
  begin: PredecessorRef,
  stubs: readonly WriteStub[],
  version: number,
): AsyncGenerator<Buffer[]> {
  return streamWrites(source, begin, stubs, version);
}

async function* streamWrites(
  source: string,
  begin: PredecessorRef,
  stubs: readonly WriteStub[],
  version: number,
): AsyncGenerator<Buffer[]> {
  const reader = new ByteReader(createReadStream(source, { highWaterMark: 64 * 1024 }));
  try {
    for (const stub of stubs) {
      const data = await reader.read(stub.dataLength);
      if (data.length !== stub.dataLength) {
        throw new DeviceError(ErrorCode.DeltaBaseMismatch, `predecessor ${begin.sourcePath} shrank while it was read`);
      }
      yield joinWrite(version, stub.prefix, data, stub.suffix, stub.crc);
    }
  } finally {
    await reader.close();
  }
}

/**
 * A patch decoded against a large predecessor. The patch's zstd frame carries a checksum of what it
 * decodes to (the release tool writes --check): a predecessor with other content makes the decode fail,
 * and only then is it hashed, to say so (DELTA_BASE_MISMATCH) rather than blame the patch. Hashing it
 * always cost a second pass over it beside the decoder's (48 MiB: 0.2 s of a core on the build machine).
 * A frame without a checksum (deltas of format 1) has its predecessor hashed beside the decode, as before.
 * `decode` runs the section, calling its `onFirst` with the patch's first PATCH_DATA payload.
 */
export async function* patchedAgainstLarge(
  source: string,
  begin: PredecessorRef,
  decode: (onFirst: (chunk: Buffer) => void) => AsyncGenerator<Buffer[]>,
): AsyncGenerator<Buffer[]> {
  let verified: Promise<void> | null = null;
  const verify = () => (verified ??= verifyPredecessorContent(source, begin));
  const onFirst = (chunk: Buffer) => {
    if (!zstdFrameHasChecksum(chunk)) verify().catch(() => undefined);
  };
  try {
    yield* decode(onFirst);
  } catch (error) {
    await verify();
    throw error;
  }
  if (verified) await verified;
}
