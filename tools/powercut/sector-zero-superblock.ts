import { SUPERBLOCK_SIZE, checkSuperblock, crc32c, repairedPrimary } from './uboot-view';

/**
 * The superblock u-boot takes when both copies are torn and no mix of their sectors checks out, as
 * uboot/patches/0003-btrfs-a-superblock-from-a-copy-s-sector-0.patch does: each copy, the newer generation
 * in sector 0 first, with its own sectors and its checksum recomputed, accepted only if the chunk root it
 * names (mapped through its own system chunk array) verifies. Offsets are those of struct
 * btrfs_super_block, btrfs_header and btrfs_chunk (kernel-shared/btrfs_tree.h).
 */
const SUPER = {
  fsid: 32,
  generation: 72,
  chunkRoot: 88,
  nodesize: 148,
  sysArraySize: 160,
  chunkRootGeneration: 164,
  incompat: 188,
  csumType: 196,
  devid: 201,
  metadataUuid: 571,
  sysArray: 811,
} as const;
const SYS_ARRAY_MAX = 2048;
const INCOMPAT_METADATA_UUID = 1n << 10n;
const DISK_KEY_SIZE = 17;
const CHUNK_ITEM_KEY = 228;
const CHUNK_HEADER_SIZE = 48;
const STRIPE_SIZE = 32;
const NODE = { fsid: 32, bytenr: 48, generation: 80 } as const;

/** Where the chunk root a superblock names lives on its device, through its own system chunk array. */
export function chunkRootPhysical(sb: Buffer): number | null {
  const logical = sb.readBigUInt64LE(SUPER.chunkRoot);
  const devid = sb.readBigUInt64LE(SUPER.devid);
  const nodesize = BigInt(sb.readUInt32LE(SUPER.nodesize));
  const size = sb.readUInt32LE(SUPER.sysArraySize);
  if (size > SYS_ARRAY_MAX) return null;
  let cur = 0;
  while (cur + DISK_KEY_SIZE + CHUNK_HEADER_SIZE + STRIPE_SIZE <= size) {
    const key = SUPER.sysArray + cur;
    const chunk = key + DISK_KEY_SIZE;
    const stripes = sb.readUInt16LE(chunk + 44);
    const length = DISK_KEY_SIZE + CHUNK_HEADER_SIZE + stripes * STRIPE_SIZE;
    if (sb[key + 8] !== CHUNK_ITEM_KEY || stripes === 0 || cur + length > size) return null;
    const start = sb.readBigUInt64LE(key + 9);
    if (logical >= start && logical - start + nodesize <= sb.readBigUInt64LE(chunk)) {
      for (let i = 0; i < stripes; i++) {
        const stripe = chunk + CHUNK_HEADER_SIZE + i * STRIPE_SIZE;
        if (sb.readBigUInt64LE(stripe) === devid) return Number(sb.readBigUInt64LE(stripe + 8) + (logical - start));
      }
      return null;
    }
    cur += length;
  }
  return null;
}

/** The node read at chunkRootPhysical() is the chunk root the superblock names (crc32c only, as the judge). */
export function chunkRootVerifies(sb: Buffer, node: Buffer): boolean {
  const nodesize = sb.readUInt32LE(SUPER.nodesize);
  if (node.length < nodesize || nodesize < SUPERBLOCK_SIZE || sb.readUInt16LE(SUPER.csumType) !== 0) return false;
  const metadataUuid = (sb.readBigUInt64LE(SUPER.incompat) & INCOMPAT_METADATA_UUID) !== 0n;
  const fsid = sb.subarray(metadataUuid ? SUPER.metadataUuid : SUPER.fsid).subarray(0, 16);
  return (
    crc32c(node.subarray(32, nodesize)) === node.readUInt32LE(0) &&
    node.readBigUInt64LE(NODE.bytenr) === sb.readBigUInt64LE(SUPER.chunkRoot) &&
    node.readBigUInt64LE(NODE.generation) === sb.readBigUInt64LE(SUPER.chunkRootGeneration) &&
    node.subarray(NODE.fsid, NODE.fsid + 16).equals(fsid)
  );
}

/**
 * The copies as candidates, the newer generation in sector 0 first: those whose sector 0 is a superblock's
 * (magic, its own bytenr, crc32c), each with its checksum recomputed over its own sectors.
 */
export function sectorZeroCandidates(copies: { offset: number; bytes: Buffer }[]): { offset: number; sb: Buffer }[] {
  return (
    copies
      .filter(({ bytes }) => bytes.length >= SUPERBLOCK_SIZE)
      .map(({ offset, bytes }) => {
        const sb = Buffer.from(bytes.subarray(0, SUPERBLOCK_SIZE));
        sb.writeUInt32LE(crc32c(sb.subarray(32)), 0);
        return { offset, sb };
      })
      // with its own checksum, what is left to fail is sector 0's: the magic, the bytenr, the checksum type
      .filter(({ offset, sb }) => checkSuperblock(sb, offset).valid)
      .sort((a, b) => Number(b.sb.readBigUInt64LE(SUPER.generation) - a.sb.readBigUInt64LE(SUPER.generation)))
  );
}

/** What patch 0003 writes as the primary, or null; `read` reads bytes of the pool's device. */
export async function superblockFromSectorZero(
  copies: { offset: number; bytes: Buffer }[],
  read: (offset: number, length: number) => Promise<Buffer>,
): Promise<{ from: number[]; generation: number; primary: Buffer } | null> {
  for (const { offset, sb } of sectorZeroCandidates(copies)) {
    const physical = chunkRootPhysical(sb);
    if (physical === null) continue;
    const node = await read(physical, sb.readUInt32LE(SUPER.nodesize));
    if (!chunkRootVerifies(sb, node)) continue;
    return { from: [offset], generation: Number(sb.readBigUInt64LE(SUPER.generation)), primary: repairedPrimary(sb) };
  }
  return null;
}
