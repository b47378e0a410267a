import {
  COMMAND_HEADER_BYTES,
  SendCommand,
  SendStreamFormatError,
  TLV_HEADER_BYTES,
  frameCommand,
  parseAttributes,
  tlv,
} from './send-stream';

/**
 * The cowroot delta stream (docs/release-tool.md "Delta artifacts"): a magic line, then the plain btrfs
 * send stream's own header, then its commands, except that the data of files whose predecessor is in the
 * parent is replaced by sections:
 *
 *   PATCH_BEGIN   source path in the parent, its size and sha256, the bytes the run carries, window, counts
 *   WRITE_STUB ×n each WRITE of one run without its data (attributes before and after DATA, data length)
 *   PATCH_DATA ×m the `zstd --patch-from=<source>` frame of the run's data, in chunks
 *
 * A section with no patch bytes (patchSize 0, no PATCH_DATA) says the run's data is the source file
 * itself: what dpkg does to every file of an upgraded package whose content did not change.
 *
 * Format 2 adds the batch section, for many small files at once (one decoder on the device, not one per
 * file: spawning them dominated the rebuild):
 *
 *   BATCH_BEGIN   number of sources, bytes of plain stream the patch decodes to, window, patch size
 *   BATCH_SOURCE ×s path, size, sha256 of each predecessor; the patch's dictionary is their concatenation
 *   PATCH_DATA ×m one `zstd --patch-from=<concatenated sources>` frame of a stretch of the plain stream
 *
 * The patch decodes to the plain commands themselves (WRITEs of the small files, and everything between
 * them), so the device passes its output on as it comes, with no per-command work but a walk over the
 * command headers (whole commands, no END: that stays held back until the sha256 matched).
 *
 * Format 3 replaces a section's WRITE_STUBs by WRITE_RUNs: one command for the writes that follow each
 * other in the file, attributes once, lengths and original crcs listed (write-run.ts); and a patch
 * section may carry a copy list instead of a zstd frame (PATCH_BEGIN's method 1, copy-list.ts).
 *
 * Format 1 is format 2 without batch sections; the device reads all three (artifacts already published
 * stay installable), the release tool writes 3.
 *
 * Every command, ours included, is framed like a send stream command (length, number, crc32c), so a
 * flipped bit in a section is caught where it is. Our numbers sit far above btrfs's (≤ 26), so a delta fed
 * to `btrfs receive` by mistake fails at once.
 */
export const DELTA_MAGIC_V1 = Buffer.from('cowroot-delta/1\n', 'latin1');
export const DELTA_MAGIC_V2 = Buffer.from('cowroot-delta/2\n', 'latin1');
/** what the release tool writes */
export const DELTA_MAGIC = Buffer.from('cowroot-delta/3\n', 'latin1');

export type DeltaFormat = 1 | 2 | 3;

/** The magic line of a format (all have the same length). */
export function deltaMagicOf(format: DeltaFormat): Buffer {
  return [DELTA_MAGIC_V1, DELTA_MAGIC_V2, DELTA_MAGIC][format - 1];
}

/**
 * Every format deltaFormatOf() accepts: what this agent reports as `deltaFormats` in its state (docs/protocol.md
 * §5.1), so the server offers it only deltas it can rebuild. Add a format here when the reader learns it.
 */
export const READABLE_DELTA_FORMATS: readonly DeltaFormat[] = [1, 2, 3];

/** The format of a delta stream's first bytes, or null. */
export function deltaFormatOf(magic: Buffer): DeltaFormat | null {
  if (magic.equals(DELTA_MAGIC)) return 3;
  if (magic.equals(DELTA_MAGIC_V2)) return 2;
  if (magic.equals(DELTA_MAGIC_V1)) return 1;
  return null;
}

export const DeltaCommand = {
  PatchBegin: 0xc001,
  WriteStub: 0xc002,
  PatchData: 0xc003,
  BatchBegin: 0xc004,
  BatchSource: 0xc005,
  /** format 3: the stubs of a run of WRITEs in one command (write-run.ts) */
  WriteRun: 0xc006,
} as const;

/** True for the numbers above, which never reach `btrfs receive`. */
export function isDeltaCommand(type: number): boolean {
  return type >= DeltaCommand.PatchBegin && type <= DeltaCommand.WriteRun;
}

/** No btrfs command comes near this (v2 writes are ≤ 16 KiB + 128 KiB); a bigger length is corruption. */
export const MAX_COMMAND_BYTES = 16 * 1024 * 1024;

/**
 * How many bytes at the start of `view` are whole plain send commands (neither ours nor END, of a sane
 * length): what passes through as it is, its headers walked, nothing parsed or copied. `btrfs receive`
 * checks their crc itself, and the sha256 of the whole rebuilt stream is checked before END.
 */
export function plainCommandsAt(view: Buffer): number {
  let at = 0;
  while (at + COMMAND_HEADER_BYTES <= view.length) {
    const length = view.readUInt32LE(at);
    const type = view.readUInt16LE(at + 4);
    if (isDeltaCommand(type) || type === SendCommand.End || length > MAX_COMMAND_BYTES) break;
    const end = at + COMMAND_HEADER_BYTES + length;
    if (end > view.length) break;
    at = end;
  }
  return at;
}

const PatchAttr = {
  SourcePath: 1,
  SourceSize: 2,
  SourceSha256: 3,
  TargetSize: 4,
  WindowLog: 5,
  Stubs: 6,
  PatchSize: 7,
  Method: 8,
};
const StubAttr = { Prefix: 1, DataLength: 2, Suffix: 3, Crc: 4 };
const BatchAttr = { Sources: 1, TargetSize: 2, WindowLog: 3, PatchSize: 4 };
const SourceAttr = { Path: 1, Size: 2, Sha256: 3 };

/**
 * Whether the zstd frame starting in `bytes` carries a checksum of its content (RFC 8878 §3.1.1.1.1:
 * magic 0xFD2FB528, then the frame header descriptor, whose bit 2 is the Content_Checksum_flag).
 */
export function zstdFrameHasChecksum(bytes: Buffer): boolean {
  return bytes.length >= 5 && bytes.readUInt32LE(0) === 0xfd2fb528 && (bytes[4] & 0x04) !== 0;
}

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
  /**
   * how the patch bytes give the data (format 3): 0 (the default, and all formats 1 and 2 know) a
   * `zstd --patch-from` frame, 1 a copy list (copy-list.ts)
   */
  method?: number;
}

export interface BatchBegin {
  sources: number;
  /** bytes of plain stream (whole commands) the patch decodes to */
  targetSize: number;
  /** zstd window (log2) covering the sources and the target */
  windowLog: number;
  patchSize: number;
}

export interface BatchSource {
  /** relative to the parent snapshot's root, as PATCH_BEGIN's */
  path: string;
  size: number;
  sha256: string;
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
    // absent for method 0, so formats 1 and 2 are written as before
    ...(begin.method ? [tlv(PatchAttr.Method, u32(begin.method))] : []),
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
    method: readU32(attributes.find((a) => a.type === PatchAttr.Method)?.value ?? u32(0), what),
  };
}

export function encodeBatchBegin(begin: BatchBegin): Buffer[] {
  return frameCommand(DeltaCommand.BatchBegin, [
    tlv(BatchAttr.Sources, u32(begin.sources)),
    tlv(BatchAttr.TargetSize, u64(begin.targetSize)),
    tlv(BatchAttr.WindowLog, u32(begin.windowLog)),
    tlv(BatchAttr.PatchSize, u64(begin.patchSize)),
  ]);
}

export function decodeBatchBegin(payload: Buffer): BatchBegin {
  const attributes = parseAttributes(payload, 1, DeltaCommand.BatchBegin);
  const what = 'BATCH_BEGIN';
  return {
    sources: readU32(required(attributes, BatchAttr.Sources, what), what),
    targetSize: readU64(required(attributes, BatchAttr.TargetSize, what), what),
    windowLog: readU32(required(attributes, BatchAttr.WindowLog, what), what),
    patchSize: readU64(required(attributes, BatchAttr.PatchSize, what), what),
  };
}

export function encodeBatchSource(source: BatchSource): Buffer[] {
  return frameCommand(DeltaCommand.BatchSource, [
    tlv(SourceAttr.Path, Buffer.from(source.path, 'utf8')),
    tlv(SourceAttr.Size, u64(source.size)),
    tlv(SourceAttr.Sha256, Buffer.from(source.sha256, 'hex')),
  ]);
}

export function decodeBatchSource(payload: Buffer): BatchSource {
  const attributes = parseAttributes(payload, 1, DeltaCommand.BatchSource);
  const what = 'BATCH_SOURCE';
  const sha = required(attributes, SourceAttr.Sha256, what);
  if (sha.length !== 32) throw new SendStreamFormatError(`${what}: bad sha256`);
  return {
    path: required(attributes, SourceAttr.Path, what).toString('utf8'),
    size: readU64(required(attributes, SourceAttr.Size, what), what),
    sha256: sha.toString('hex'),
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
