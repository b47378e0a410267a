/**
 * Hand-made btrfs send streams (protocol 1) for the checks of `cowroot-release sign`: what a hostile or
 * broken build system could produce and `btrfs send` never does (paths outside the subvolume, clones
 * from another subvolume). Framing per the kernel's fs/btrfs/send.h; CRC32C as btrfs computes it (seed 0,
 * no inversion, over the command with its crc field zeroed).
 */
export const CMD = { subvol: 1, snapshot: 2, mkfile: 3, mkdir: 4, write: 15, clone: 16, end: 21 } as const;
export const ATTR = {
  uuid: 1,
  ctransid: 2,
  ino: 3,
  path: 15,
  fileOffset: 18,
  data: 19,
  cloneUuid: 20,
  cloneCtransid: 21,
  clonePath: 22,
  cloneOffset: 23,
  cloneLen: 24,
} as const;

export function crc32c(buffer: Buffer): number {
  let crc = 0;
  for (const byte of buffer) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return crc >>> 0;
}

export function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

export function u64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(value));
  return bytes;
}

export type Attr = [number, Buffer | string];

export function command(cmd: number, attrs: Attr[]): Buffer {
  const payload = Buffer.concat(
    attrs.map(([type, value]) => {
      const data = typeof value === 'string' ? Buffer.from(value) : value;
      const tlv = Buffer.alloc(4);
      tlv.writeUInt16LE(type, 0);
      tlv.writeUInt16LE(data.length, 2);
      return Buffer.concat([tlv, data]);
    }),
  );
  const header = Buffer.alloc(10);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt16LE(cmd, 4);
  const whole = Buffer.concat([header, payload]);
  whole.writeUInt32LE(crc32c(whole), 6);
  return whole;
}

export function sendStream(commands: Buffer[]): Buffer {
  const version = Buffer.alloc(4);
  version.writeUInt32LE(1);
  return Buffer.concat([Buffer.from('btrfs-stream\0', 'latin1'), version, ...commands, command(CMD.end, [])]);
}

/** A full stream of subvolume `name` (uuid) with the given further commands. */
export function fullStream(name: string, uuid: string, commands: Buffer[]): Buffer {
  return sendStream([
    command(CMD.subvol, [
      [ATTR.path, name],
      [ATTR.uuid, uuidBytes(uuid)],
      [ATTR.ctransid, u64(7)],
    ]),
    ...commands,
  ]);
}
