import { SendStreamFormatError, TLV_HEADER_BYTES, frameCommand, parseAttributes, tlv } from './send-stream';

/**
 * The cowroot delta stream (docs/release-tool.md "Delta artifacts"): `DELTA_MAGIC`, then the plain btrfs
 * send stream's own header, then its commands, except that each run of consecutive WRITEs to one file
 * whose predecessor is in the parent is replaced by a patch section:
 *
 *   PATCH_BEGIN   source path in the parent, its size and sha256, the bytes the run carries, window, counts
 *   WRITE_STUB ×n each WRITE without its data (attributes before and after DATA, and the data length)
 *   PATCH_DATA ×m the `zstd --patch-from=<source>` frame of the run's data, in chunks
 *
 * A section with no patch bytes (patchSize 0, no PATCH_DATA) says the run's data is the source file
 * itself: what dpkg does to every file of an upgraded package whose content did not change.
 *
 * Every command, ours included, is framed like a send stream command (length, number, crc32c), so a
 * flipped bit in a section is caught where it is. Our numbers sit far above btrfs's (≤ 26), so a delta fed
 * to `btrfs receive` by mistake fails at once.
 */
export const DELTA_MAGIC = Buffer.from('cowroot-delta/1\n', 'latin1');

export const DeltaCommand = {
  PatchBegin: 0xc001,
  WriteStub: 0xc002,
  PatchData: 0xc003,
} as const;

const PatchAttr = {
  SourcePath: 1,
  SourceSize: 2,
  SourceSha256: 3,
  TargetSize: 4,
  WindowLog: 5,
  Stubs: 6,
  PatchSize: 7,
};
const StubAttr = { Prefix: 1, DataLength: 2, Suffix: 3, Crc: 4 };

/** Patch bytes per PATCH_DATA command. */
export const PATCH_DATA_CHUNK = 64 * 1024;

export interface PatchBegin {
  /** relative to the parent snapshot's root, no `..`, no leading `/` */
  sourcePath: string;
  sourceSize: number;
  sourceSha256: string;
  /** sum of the stubs' data lengths = what the patch decodes to */
  targetSize: number;
  /** zstd window (log2) the patch was made with; the decoder needs that much memory */
  windowLog: number;
  stubs: number;
  patchSize: number;
}

export interface WriteStub {
  prefix: Buffer;
  dataLength: number;
  suffix: Buffer;
  /** the original WRITE's crc32c: the rebuilt command is byte for byte the original */
  crc: number;
}

function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64LE(BigInt(value));
  return buffer;
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
}

function required(attributes: ReturnType<typeof parseAttributes>, type: number, what: string): Buffer {
  const value = attributes.find((a) => a.type === type)?.value;
  if (!value) throw new SendStreamFormatError(`${what} lacks attribute ${type}`);
  return value;
}

function readU64(value: Buffer, what: string): number {
  if (value.length !== 8) throw new SendStreamFormatError(`${what}: bad u64`);
  const n = value.readBigUInt64LE(0);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new SendStreamFormatError(`${what}: value too large`);
  return Number(n);
}

function readU32(value: Buffer, what: string): number {
  if (value.length !== 4) throw new SendStreamFormatError(`${what}: bad u32`);
  return value.readUInt32LE(0);
}

export function encodePatchBegin(begin: PatchBegin): Buffer[] {
  return frameCommand(DeltaCommand.PatchBegin, [
    tlv(PatchAttr.SourcePath, Buffer.from(begin.sourcePath, 'utf8')),
    tlv(PatchAttr.SourceSize, u64(begin.sourceSize)),
    tlv(PatchAttr.SourceSha256, Buffer.from(begin.sourceSha256, 'hex')),
    tlv(PatchAttr.TargetSize, u64(begin.targetSize)),
    tlv(PatchAttr.WindowLog, u32(begin.windowLog)),
    tlv(PatchAttr.Stubs, u32(begin.stubs)),
    tlv(PatchAttr.PatchSize, u64(begin.patchSize)),
  ]);
}

export function decodePatchBegin(payload: Buffer): PatchBegin {
  const attributes = parseAttributes(payload, 1, DeltaCommand.PatchBegin);
  const what = 'PATCH_BEGIN';
  const sha = required(attributes, PatchAttr.SourceSha256, what);
  if (sha.length !== 32) throw new SendStreamFormatError(`${what}: bad sha256`);
  return {
    sourcePath: required(attributes, PatchAttr.SourcePath, what).toString('utf8'),
    sourceSize: readU64(required(attributes, PatchAttr.SourceSize, what), what),
    sourceSha256: sha.toString('hex'),
    targetSize: readU64(required(attributes, PatchAttr.TargetSize, what), what),
    windowLog: readU32(required(attributes, PatchAttr.WindowLog, what), what),
    stubs: readU32(required(attributes, PatchAttr.Stubs, what), what),
    patchSize: readU64(required(attributes, PatchAttr.PatchSize, what), what),
  };
}

export function encodeWriteStub(stub: WriteStub): Buffer[] {
  return frameCommand(DeltaCommand.WriteStub, [
    tlv(StubAttr.Prefix, stub.prefix),
    tlv(StubAttr.DataLength, u32(stub.dataLength)),
    tlv(StubAttr.Suffix, stub.suffix),
    tlv(StubAttr.Crc, u32(stub.crc)),
  ]);
}

export function decodeWriteStub(payload: Buffer): WriteStub {
  const attributes = parseAttributes(payload, 1, DeltaCommand.WriteStub);
  const what = 'WRITE_STUB';
  return {
    prefix: Buffer.from(required(attributes, StubAttr.Prefix, what)),
    dataLength: readU32(required(attributes, StubAttr.DataLength, what), what),
    suffix: Buffer.from(attributes.find((a) => a.type === StubAttr.Suffix)?.value ?? Buffer.alloc(0)),
    crc: readU32(required(attributes, StubAttr.Crc, what), what),
  };
}

/** A stub's bytes in the delta (for size accounting on the build host). */
export function writeStubBytes(stub: WriteStub): number {
  return 10 + 4 * TLV_HEADER_BYTES + stub.prefix.length + 4 + stub.suffix.length + 4;
}

export function encodePatchData(chunk: Buffer): Buffer[] {
  return frameCommand(DeltaCommand.PatchData, [chunk]);
}
