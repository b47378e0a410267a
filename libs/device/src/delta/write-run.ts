import { DeltaCommand, WriteStub } from './delta-format';
import { SendAttr, SendStreamFormatError, TLV_HEADER_BYTES, frameCommand, parseAttributes, tlv } from './send-stream';

/**
 * WRITE_RUN (format 3, docs/release-tool.md "Delta artifacts"): the WRITEs of a patch section that follow
 * each other in one file, in one command instead of one WRITE_STUB each. A 48 MiB file goes as ≈ 1,025
 * WRITEs of 48 KiB; as stubs each repeated the path, a changing offset and two crc32c (the stub's own and
 * the original WRITE's), ≈ 13 KB of framing. A run says the first WRITE's attributes once (its prefix: the
 * attributes before DATA, path and offset among them; its suffix: those after) and lists the data lengths
 * and the original crcs; write i + 1 starts where write i ended (its offset is implied), and its
 * attributes are the first's with that offset. Writes that do not follow on this way start another run.
 * The original crcs stay: `btrfs receive` checks them, and the device cannot recompute them cheaply
 * (crc32c in JavaScript under the agent's `--lite-mode` runs at ≈ 3.5 MB/s).
 */
/** At most this many writes per run: each list (4 bytes a write) must fit one attribute (≤ 65535 bytes). */
export const MAX_RUN_WRITES = 8192;

const RunAttr = { Prefix: 1, Suffix: 2, Lengths: 3, Crcs: 4 };

/** Where the 8 bytes of the FILE_OFFSET value lie in a WRITE's prefix (its attributes before DATA). */
function offsetAt(prefix: Buffer): number {
  const attributes = parseAttributes(prefix, 1, 0);
  const offset = attributes.find((a) => a.type === SendAttr.FileOffset);
  if (!offset || offset.value.length !== 8) throw new SendStreamFormatError('a write run’s prefix has no file offset');
  return offset.start + TLV_HEADER_BYTES;
}

/** Whether `next` is the WRITE that follows `last` in a run that began with `first` (same attributes but the offset). */
function follows(first: WriteStub, at: number, last: WriteStub, next: WriteStub): boolean {
  if (next.prefix.length !== first.prefix.length || !next.suffix.equals(first.suffix)) return false;
  if (next.prefix.compare(first.prefix, 0, at, 0, at) !== 0) return false;
  if (next.prefix.compare(first.prefix, at + 8, first.prefix.length, at + 8) !== 0) return false;
  return next.prefix.readBigUInt64LE(at) === last.prefix.readBigUInt64LE(at) + BigInt(last.dataLength);
}

function u32List(values: readonly number[]): Buffer {
  const buffer = Buffer.alloc(values.length * 4);
  values.forEach((value, i) => buffer.writeUInt32LE(value, i * 4));
  return buffer;
}

/** The stubs of a section as WRITE_RUN commands (each framed: header + parts), in order. */
export function encodeWriteRuns(stubs: readonly WriteStub[]): Buffer[][] {
  const commands: Buffer[][] = [];
  let run: WriteStub[] = [];
  let at = 0;
  const close = () => {
    if (run.length === 0) return;
    const parts = [tlv(RunAttr.Prefix, run[0].prefix)];
    if (run[0].suffix.length > 0) parts.push(tlv(RunAttr.Suffix, run[0].suffix));
    parts.push(tlv(RunAttr.Lengths, u32List(run.map((stub) => stub.dataLength))));
    parts.push(tlv(RunAttr.Crcs, u32List(run.map((stub) => stub.crc))));
    commands.push(frameCommand(DeltaCommand.WriteRun, parts));
    run = [];
  };
  for (const stub of stubs) {
    if (run.length > 0 && (run.length === MAX_RUN_WRITES || !follows(run[0], at, run[run.length - 1], stub))) close();
    if (run.length === 0) at = offsetAt(stub.prefix);
    run.push(stub);
  }
  close();
  return commands;
}

/** The stubs of one WRITE_RUN payload, each with its own prefix (the first's, its offset moved on). */
export function decodeWriteRun(payload: Buffer): WriteStub[] {
  const what = 'WRITE_RUN';
  const attributes = parseAttributes(payload, 1, DeltaCommand.WriteRun);
  const find = (type: number) => attributes.find((a) => a.type === type)?.value;
  const prefix = find(RunAttr.Prefix);
  const lengths = find(RunAttr.Lengths);
  const crcs = find(RunAttr.Crcs);
  if (!prefix || !lengths || !crcs) throw new SendStreamFormatError(`${what} lacks an attribute`);
  const count = lengths.length / 4;
  if (lengths.length % 4 !== 0 || count === 0 || crcs.length !== lengths.length || count > MAX_RUN_WRITES) {
    throw new SendStreamFormatError(`${what}: its lengths and crcs disagree`);
  }
  const suffix = Buffer.from(find(RunAttr.Suffix) ?? Buffer.alloc(0));
  const at = offsetAt(prefix);
  let offset = prefix.readBigUInt64LE(at);
  const stubs: WriteStub[] = [];
  for (let i = 0; i < count; i++) {
    const own = Buffer.from(prefix);
    own.writeBigUInt64LE(offset, at);
    const dataLength = lengths.readUInt32LE(i * 4);
    stubs.push({ prefix: own, dataLength, suffix, crc: crcs.readUInt32LE(i * 4) });
    offset += BigInt(dataLength);
    if (offset > 0xffffffffffffffffn) throw new SendStreamFormatError(`${what}: offsets run past 2^64`);
  }
  return stubs;
}
