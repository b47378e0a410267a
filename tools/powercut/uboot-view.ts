import { crc32 } from 'node:zlib';

/**
 * What u-boot 2023.01 sees on a disk, as pure functions over bytes: the redundant env (env/common.c
 * env_import_redund, env/fat.c), legacy uImage checks (`iminfo`: image_check_hcrc/dcrc), and whether a
 * btrfs superblock copy passes the checks of fs/btrfs/disk-io.c btrfs_read_dev_super.
 */

/** One env copy (uboot.env or uboot-redund.env), null when the file could not be read at all. */
export interface EnvCopy {
  name: string;
  valid: boolean;
  /** the redundant-env serial (byte 4): the higher one (255 → 0 wraps) is the newer copy */
  flag: number;
  vars: Record<string, string>;
  why?: string;
}

/** CONFIG_ENV_SIZE of uboot/qemu-x86-cowroot.config */
export const ENV_SIZE = 0x4000;
const REDUND_HEADER = 5;

export function parseEnvCopy(name: string, bytes: Buffer | null, size = ENV_SIZE): EnvCopy {
  if (!bytes) return { name, valid: false, flag: 0, vars: {}, why: 'file not readable' };
  if (bytes.length < size) return { name, valid: false, flag: 0, vars: {}, why: `short file (${bytes.length} bytes)` };
  const data = bytes.subarray(REDUND_HEADER, size);
  const stored = bytes.readUInt32LE(0);
  const flag = bytes[4];
  if (crc32(data) !== stored) return { name, valid: false, flag, vars: {}, why: 'bad CRC' };
  const vars: Record<string, string> = {};
  let start = 0;
  while (start < data.length && data[start] !== 0) {
    const end = data.indexOf(0, start);
    const entry = data.subarray(start, end < 0 ? data.length : end).toString('latin1');
    const at = entry.indexOf('=');
    if (at > 0) vars[entry.slice(0, at)] = entry.slice(at + 1);
    start = end < 0 ? data.length : end + 1;
  }
  return { name, valid: true, flag, vars };
}

/**
 * env_import_redund: both valid → the newer serial (255 and 0: 0 is newer; equal: the first file);
 * one valid → that one; none → u-boot falls back to its built-in default env (null here), which has no
 * cowroot_* settings, so boot.scr finds nothing to boot.
 */
export function chooseEnv(first: EnvCopy, second: EnvCopy): EnvCopy | null {
  if (!first.valid && !second.valid) return null;
  if (!second.valid) return first;
  if (!first.valid) return second;
  if (first.flag === 255 && second.flag === 0) return second;
  if (second.flag === 255 && first.flag === 0) return first;
  return second.flag > first.flag ? second : first;
}

/** `iminfo` on a legacy image: magic, header CRC, data CRC over ih_size bytes after the 64-byte header. */
export function checkLegacyImage(bytes: Buffer | null): { ok: boolean; why?: string } {
  if (!bytes) return { ok: false, why: 'missing' };
  if (bytes.length < 64) return { ok: false, why: 'shorter than a legacy header' };
  if (bytes.readUInt32BE(0) !== 0x27051956) return { ok: false, why: 'bad magic' };
  const header = Buffer.from(bytes.subarray(0, 64));
  const hcrc = header.readUInt32BE(4);
  header.writeUInt32BE(0, 4);
  if (crc32(header) !== hcrc) return { ok: false, why: 'bad header checksum' };
  const size = bytes.readUInt32BE(12);
  if (bytes.length < 64 + size) return { ok: false, why: `truncated (${bytes.length - 64} of ${size} data bytes)` };
  if (crc32(bytes.subarray(64, 64 + size)) !== bytes.readUInt32BE(24)) return { ok: false, why: 'bad data checksum' };
  return { ok: true };
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC32C_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** btrfs superblock copies: primary at 64 KiB, backups at 64 MiB and 256 GiB (btrfs_sb_offset). */
export const SUPERBLOCK_OFFSETS = [64 * 1024, 64 * 1024 * 1024, 256 * 1024 * 1024 * 1024];
export const SUPERBLOCK_SIZE = 4096;
const BTRFS_MAGIC = Buffer.from('_BHRfS_M', 'latin1');

export interface SuperblockStatus {
  offset: number;
  valid: boolean;
  generation: number;
  why?: string;
}

/** Magic, bytenr and checksum of one superblock copy (crc32c, the mkfs default; others are reported). */
export function checkSuperblock(bytes: Buffer, offset: number): SuperblockStatus {
  if (bytes.length < SUPERBLOCK_SIZE) return { offset, valid: false, generation: 0, why: 'beyond the device' };
  const generation = Number(bytes.readBigUInt64LE(72));
  if (!bytes.subarray(64, 72).equals(BTRFS_MAGIC)) return { offset, valid: false, generation, why: 'bad magic' };
  if (Number(bytes.readBigUInt64LE(48)) !== offset) return { offset, valid: false, generation, why: 'bad bytenr' };
  const csumType = bytes.readUInt16LE(196);
  if (csumType !== 0) return { offset, valid: false, generation, why: `checksum type ${csumType} not checked here` };
  if (crc32c(bytes.subarray(32, SUPERBLOCK_SIZE)) !== bytes.readUInt32LE(0)) {
    return { offset, valid: false, generation, why: 'bad checksum' };
  }
  return { offset, valid: true, generation };
}

/**
 * The superblock u-boot mounts: stock 2023.01 takes the primary or nothing; with
 * uboot/patches/0001-btrfs-fall-back-to-a-backup-superblock.patch an invalid primary falls back to the
 * valid backup with the highest generation.
 */
export function ubootSuperblock(copies: SuperblockStatus[], withBackupFallback: boolean): SuperblockStatus | null {
  const [primary, ...backups] = copies;
  if (primary?.valid) return primary;
  if (!withBackupFallback) return null;
  const valid = backups.filter((c) => c.valid).sort((a, b) => b.generation - a.generation);
  return valid[0] ?? null;
}

/**
 * What `btrfs rescue super-recover` puts at the primary's place (pure): the chosen backup copy with the
 * primary's bytenr and its checksum recomputed.
 */
export function repairedPrimary(backup: Buffer): Buffer {
  const repaired = Buffer.from(backup.subarray(0, SUPERBLOCK_SIZE));
  repaired.writeBigUInt64LE(BigInt(SUPERBLOCK_OFFSETS[0]), 48);
  repaired.writeUInt32LE(crc32c(repaired.subarray(32)), 0);
  return repaired;
}

/** The 512-byte sectors of a superblock copy: the unit a torn write keeps or loses. */
const SUPER_SECTOR = 512;

/**
 * A superblock rebuilt from two torn copies, as uboot/patches/0002-btrfs-rebuild-a-superblock-from-two-
 * torn-copies.patch does when no copy is valid (pure). The copies of one commit differ only in sector 0
 * (`bytenr` and the checksum): sector 0 of one copy (its checksum, its bytenr) with each of sectors 1..7
 * taken from either copy, 2 × 128 candidates; the valid one with the highest generation wins, and is
 * returned re-addressed to the primary's place (what the patch writes back there for Linux).
 */
export function rebuildSuperblock(
  copies: { offset: number; bytes: Buffer }[],
): { from: number[]; generation: number; primary: Buffer } | null {
  const sectors = SUPERBLOCK_SIZE / SUPER_SECTOR;
  let best: { from: number[]; generation: number; primary: Buffer } | null = null;
  for (const head of copies) {
    for (const other of copies) {
      if (other === head || head.bytes.length < SUPERBLOCK_SIZE || other.bytes.length < SUPERBLOCK_SIZE) continue;
      for (let mask = 0; mask < 1 << (sectors - 1); mask++) {
        const candidate = Buffer.from(head.bytes.subarray(0, SUPERBLOCK_SIZE));
        for (let s = 1; s < sectors; s++) {
          if (mask & (1 << (s - 1)))
            other.bytes.copy(candidate, s * SUPER_SECTOR, s * SUPER_SECTOR, (s + 1) * SUPER_SECTOR);
        }
        const status = checkSuperblock(candidate, head.offset);
        if (!status.valid || (best && status.generation <= best.generation)) continue;
        best = {
          from: [head.offset, other.offset],
          generation: status.generation,
          primary: repairedPrimary(candidate),
        };
      }
    }
  }
  return best;
}
