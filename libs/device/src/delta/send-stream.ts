import { crc32c } from './crc32c';

/**
 * The btrfs send stream framing (btrfs-progs common/send-stream.c and kernel-shared/send.h, the kernel's
 * fs/btrfs/send.h): a header `"btrfs-stream\0"` + le32 version, then commands, each
 * `le32 len | le16 cmd | le32 crc32c` followed by `len` bytes of attributes `le16 type | le16 len | value`.
 * The crc covers the 10-byte header with crc = 0 plus the attributes. From version 2 the DATA attribute of
 * a WRITE has no length field: it is the last attribute and runs to the end of the command.
 */
export const SEND_STREAM_MAGIC = Buffer.from('btrfs-stream\0', 'latin1');
export const STREAM_HEADER_BYTES = SEND_STREAM_MAGIC.length + 4;
export const COMMAND_HEADER_BYTES = 10;
export const TLV_HEADER_BYTES = 4;

/** The commands we look at (the rest pass through untouched). */
export const SendCommand = {
  Write: 15,
  Clone: 16,
  End: 21,
} as const;

export const SendAttr = {
  Path: 15,
  FileOffset: 18,
  Data: 19,
} as const;

/** Versions whose framing we know: v1 (btrfs send's default) and v2/v3 (`--proto`, same framing). */
export const SUPPORTED_STREAM_VERSIONS = [1, 2, 3];

export class SendStreamFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SendStreamFormatError';
  }
}

/** The version of a stream header; throws on anything that is not a btrfs send stream we can read. */
export function parseStreamHeader(header: Buffer): number {
  if (header.length < STREAM_HEADER_BYTES || !header.subarray(0, SEND_STREAM_MAGIC.length).equals(SEND_STREAM_MAGIC)) {
    throw new SendStreamFormatError('not a btrfs send stream (bad magic)');
  }
  const version = header.readUInt32LE(SEND_STREAM_MAGIC.length);
  if (!SUPPORTED_STREAM_VERSIONS.includes(version)) {
    throw new SendStreamFormatError(`btrfs send stream version ${version} is not supported`);
  }
  return version;
}

export function streamHeader(version: number): Buffer {
  const header = Buffer.alloc(STREAM_HEADER_BYTES);
  SEND_STREAM_MAGIC.copy(header);
  header.writeUInt32LE(version, SEND_STREAM_MAGIC.length);
  return header;
}

export interface CommandHeader {
  length: number;
  command: number;
  crc: number;
}

export function parseCommandHeader(header: Buffer): CommandHeader {
  return { length: header.readUInt32LE(0), command: header.readUInt16LE(4), crc: header.readUInt32LE(6) };
}

/** The crc of a command made of these parts (header first, its crc field ignored). */
export function commandCrc(parts: readonly Buffer[]): number {
  const header = Buffer.from(parts[0].subarray(0, COMMAND_HEADER_BYTES));
  header.writeUInt32LE(0, 6);
  let crc = crc32c(header);
  crc = crc32c(parts[0].subarray(COMMAND_HEADER_BYTES), crc);
  for (let i = 1; i < parts.length; i++) crc = crc32c(parts[i], crc);
  return crc;
}

/** Frames `payload` parts as one command with its length and crc; returns header + parts, ready to write. */
export function frameCommand(command: number, payload: readonly Buffer[]): Buffer[] {
  const length = payload.reduce((sum, part) => sum + part.length, 0);
  const header = Buffer.alloc(COMMAND_HEADER_BYTES);
  header.writeUInt32LE(length, 0);
  header.writeUInt16LE(command, 4);
  header.writeUInt32LE(commandCrc([header, ...payload]), 6);
  return [header, ...payload];
}

const ZERO_CRC_FIELD = Buffer.alloc(4);

/** True when a whole command (header + payload) carries the crc of its bytes (nothing copied). */
export function hasValidCrc(command: Buffer): boolean {
  let crc = crc32c(command.subarray(0, 6));
  crc = crc32c(ZERO_CRC_FIELD, crc);
  crc = crc32c(command.subarray(COMMAND_HEADER_BYTES), crc);
  return command.readUInt32LE(6) === crc;
}

export function tlv(type: number, value: Buffer): Buffer {
  if (value.length > 0xffff) throw new SendStreamFormatError(`attribute ${type} longer than 65535 bytes`);
  const header = Buffer.alloc(TLV_HEADER_BYTES);
  header.writeUInt16LE(type, 0);
  header.writeUInt16LE(value.length, 2);
  return Buffer.concat([header, value]);
}

export interface Attribute {
  type: number;
  /** offset of the attribute's header in the payload */
  start: number;
  value: Buffer;
}

/** The attributes of a command payload (a view, nothing copied). */
export function parseAttributes(payload: Buffer, version: number, command: number): Attribute[] {
  const attributes: Attribute[] = [];
  let pos = 0;
  while (pos < payload.length) {
    if (pos + 2 > payload.length) throw new SendStreamFormatError('attribute header cut short');
    const type = payload.readUInt16LE(pos);
    if (version >= 2 && command === SendCommand.Write && type === SendAttr.Data) {
      attributes.push({ type, start: pos, value: payload.subarray(pos + 2) });
      break;
    }
    if (pos + TLV_HEADER_BYTES > payload.length) throw new SendStreamFormatError('attribute header cut short');
    const length = payload.readUInt16LE(pos + 2);
    const end = pos + TLV_HEADER_BYTES + length;
    if (end > payload.length) throw new SendStreamFormatError(`attribute ${type} runs past its command`);
    attributes.push({ type, start: pos, value: payload.subarray(pos + TLV_HEADER_BYTES, end) });
    pos = end;
  }
  return attributes;
}

export function attribute(attributes: readonly Attribute[], type: number): Buffer | undefined {
  return attributes.find((a) => a.type === type)?.value;
}

/** A WRITE split around its data: what comes before the DATA attribute, the data, and what follows. */
export interface SplitWrite {
  path: string;
  offset: bigint;
  prefix: Buffer;
  data: Buffer;
  suffix: Buffer;
}

export function splitWrite(payload: Buffer, version: number): SplitWrite {
  const attributes = parseAttributes(payload, version, SendCommand.Write);
  const data = attributes.find((a) => a.type === SendAttr.Data);
  const path = attribute(attributes, SendAttr.Path);
  const offset = attribute(attributes, SendAttr.FileOffset);
  if (!data || !path || !offset || offset.length !== 8)
    throw new SendStreamFormatError('WRITE without path/offset/data');
  const dataHeaderBytes = version >= 2 ? 2 : TLV_HEADER_BYTES;
  return {
    path: path.toString('utf8'),
    offset: offset.readBigUInt64LE(0),
    prefix: payload.subarray(0, data.start),
    data: data.value,
    suffix: payload.subarray(data.start + dataHeaderBytes + data.value.length),
  };
}

/** The DATA attribute's header as the stream version writes it (v1: type + length, v2+: type only). */
export function dataHeader(version: number, length: number): Buffer {
  if (version >= 2) {
    const header = Buffer.alloc(2);
    header.writeUInt16LE(SendAttr.Data, 0);
    return header;
  }
  if (length > 0xffff) throw new SendStreamFormatError('a v1 WRITE carries at most 65535 bytes');
  const header = Buffer.alloc(TLV_HEADER_BYTES);
  header.writeUInt16LE(SendAttr.Data, 0);
  header.writeUInt16LE(length, 2);
  return header;
}

/**
 * The exact WRITE command `splitWrite` took apart, as buffers to write out in order. With `crc` (the
 * original command's, carried by the delta) nothing is computed: the rebuilt bytes are the original ones,
 * so btrfs receive's own crc check and the stream's sha256 both vouch for the data; without it the crc
 * is computed over the parts.
 */
export function joinWrite(version: number, prefix: Buffer, data: Buffer, suffix: Buffer, crc?: number): Buffer[] {
  const payload = [prefix, dataHeader(version, data.length), data, suffix];
  if (crc === undefined) return frameCommand(SendCommand.Write, payload);
  const header = Buffer.alloc(COMMAND_HEADER_BYTES);
  header.writeUInt32LE(prefix.length + payload[1].length + data.length + suffix.length, 0);
  header.writeUInt16LE(SendCommand.Write, 4);
  header.writeUInt32LE(crc, 6);
  return [header, ...payload];
}
