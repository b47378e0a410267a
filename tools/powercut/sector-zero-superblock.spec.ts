import {
  chunkRootPhysical,
  chunkRootVerifies,
  sectorZeroCandidates,
  superblockFromSectorZero,
} from './sector-zero-superblock';
import { checkSuperblock, crc32c, rebuildSuperblock } from './uboot-view';

const [P, B] = [65536, 64 * 1024 * 1024];
const NODESIZE = 16384;
const FSID = Buffer.alloc(16, 0x42);
// one SYSTEM chunk: logical 22 MiB (8 MiB long), on device 1 at physical 4 MiB (what mkfs lays out)
const CHUNK_LOGICAL = 22n << 20n;
const CHUNK_PHYSICAL = 4n << 20n;
const CHUNK_ROOT = CHUNK_LOGICAL + 16384n * 3n;

function superblock(generation: number, offset: number, chunkRootGeneration = 5): Buffer {
  const sb = Buffer.alloc(4096);
  FSID.copy(sb, 32);
  sb.writeBigUInt64LE(BigInt(offset), 48);
  sb.write('_BHRfS_M', 64, 'latin1');
  sb.writeBigUInt64LE(BigInt(generation), 72);
  sb.writeBigUInt64LE(CHUNK_ROOT, 88);
  sb.writeUInt32LE(NODESIZE, 148);
  sb.writeBigUInt64LE(BigInt(chunkRootGeneration), 164);
  sb.writeBigUInt64LE(1n, 201); // dev_item.devid
  // sys_chunk_array: disk key (objectid 256, CHUNK_ITEM 228, offset = logical) + chunk with 2 stripes (DUP)
  const key = 811;
  sb.writeBigUInt64LE(256n, key);
  sb[key + 8] = 228;
  sb.writeBigUInt64LE(CHUNK_LOGICAL, key + 9);
  const chunk = key + 17;
  sb.writeBigUInt64LE(8n << 20n, chunk);
  sb.writeUInt16LE(2, chunk + 44);
  sb.writeBigUInt64LE(1n, chunk + 48);
  sb.writeBigUInt64LE(CHUNK_PHYSICAL, chunk + 56);
  sb.writeBigUInt64LE(1n, chunk + 80);
  sb.writeBigUInt64LE(CHUNK_PHYSICAL + (8n << 20n), chunk + 88);
  sb.writeUInt32LE(17 + 48 + 2 * 32, 160);
  // what a commit changes beyond sector 0: uuid_tree_generation (sector 1), the backup roots (5, 6)
  sb.writeBigUInt64LE(BigInt(generation), 563);
  sb.writeBigUInt64LE(BigInt(generation * 1000), 0xb30);
  sb.writeBigUInt64LE(BigInt(generation * 1000 + 1), 0xc80);
  sb.writeUInt32LE(crc32c(sb.subarray(32)), 0);
  return sb;
}

function chunkRoot(generation = 5, bytenr = CHUNK_ROOT): Buffer {
  const node = Buffer.alloc(NODESIZE);
  FSID.copy(node, 32);
  node.writeBigUInt64LE(bytenr, 48);
  node.writeBigUInt64LE(BigInt(generation), 80);
  node.writeUInt32LE(crc32c(node.subarray(32)), 0);
  return node;
}

/** a write torn at 512 B: the kept sectors are the new copy's, the others the old one's */
function torn(old: Buffer, fresh: Buffer, kept: number[]): Buffer {
  const out = Buffer.from(old);
  for (const s of kept) fresh.copy(out, s * 512, s * 512, (s + 1) * 512);
  return out;
}

describe('a superblock from a copy sector 0 (uboot/patches/0003)', () => {
  it('maps the chunk root through the superblock own system chunk array, to its device stripe', () => {
    expect(chunkRootPhysical(superblock(9, P))).toBe(Number(CHUNK_PHYSICAL + 16384n * 3n));
    const elsewhere = superblock(9, P);
    elsewhere.writeBigUInt64LE(2n, 201); // another device: no stripe of this one
    expect(chunkRootPhysical(elsewhere)).toBeNull();
    const outside = superblock(9, P);
    outside.writeBigUInt64LE(CHUNK_LOGICAL + (9n << 20n), 88);
    expect(chunkRootPhysical(outside)).toBeNull();
    const garbled = superblock(9, P);
    garbled[811 + 8] = 0; // not a CHUNK_ITEM key
    expect(chunkRootPhysical(garbled)).toBeNull();
  });

  it('verifies the chunk root: checksum, bytenr, generation, fsid', () => {
    const sb = superblock(9, P);
    expect(chunkRootVerifies(sb, chunkRoot())).toBe(true);
    expect(chunkRootVerifies(sb, chunkRoot(4))).toBe(false);
    expect(chunkRootVerifies(sb, chunkRoot(5, CHUNK_ROOT + 16384n))).toBe(false);
    const flipped = chunkRoot();
    flipped[5000] ^= 1;
    expect(chunkRootVerifies(sb, flipped)).toBe(false);
    const foreign = chunkRoot();
    foreign[40] ^= 1;
    foreign.writeUInt32LE(crc32c(foreign.subarray(32)), 0);
    expect(chunkRootVerifies(sb, foreign)).toBe(false);
  });

  it('takes the newer sector 0 when no mix of the sectors checks out, and writes it as the primary', async () => {
    // new sector 0 in the primary only, new sector 5 in neither copy, new sector 1 in both: no mix checks out
    const primary = torn(superblock(8, P), superblock(9, P), [0, 1]);
    const backup = torn(superblock(8, B), superblock(9, B), [1]);
    const copies = [
      { offset: P, bytes: primary },
      { offset: B, bytes: backup },
    ];
    expect(checkSuperblock(primary, P).valid).toBe(false);
    expect(checkSuperblock(backup, B).valid).toBe(false);
    expect(rebuildSuperblock(copies)).toBeNull();
    expect(sectorZeroCandidates(copies).map((c) => c.offset)).toEqual([P, B]);
    const reads: number[] = [];
    const read = (offset: number, length: number): Promise<Buffer> => {
      reads.push(offset);
      return Promise.resolve(chunkRoot().subarray(0, length));
    };
    const rebuilt = await superblockFromSectorZero(copies, read);
    expect(rebuilt).toMatchObject({ from: [P], generation: 9 });
    expect(reads).toEqual([Number(CHUNK_PHYSICAL + 16384n * 3n)]);
    expect(checkSuperblock(rebuilt!.primary, P)).toMatchObject({ valid: true, generation: 9 });
    // its own sectors: sector 5 is still generation 8's (a stale backup-root slot, which the kernel rewrites)
    expect(rebuilt!.primary.readBigUInt64LE(0xb30)).toBe(8000n);
  });

  it('falls back to the older copy when the newer one names a chunk root that does not verify', async () => {
    const primary = torn(superblock(8, P), superblock(9, P, 6), [0, 1]);
    const backup = torn(superblock(8, B), superblock(9, B, 6), [1]);
    const copies = [
      { offset: P, bytes: primary },
      { offset: B, bytes: backup },
    ];
    // on the disk only generation 5's chunk root: generation 9's names chunk root generation 6
    const rebuilt = await superblockFromSectorZero(copies, (_o, length) =>
      Promise.resolve(chunkRoot().subarray(0, length)),
    );
    expect(rebuilt).toMatchObject({ from: [B], generation: 8 });
    const none = await superblockFromSectorZero(copies, (_o, length) => Promise.resolve(Buffer.alloc(length)));
    expect(none).toBeNull();
  });

  it('skips a copy whose sector 0 is not a superblock (magic, bytenr)', () => {
    const zeroed = Buffer.alloc(4096);
    const moved = superblock(9, B);
    expect(
      sectorZeroCandidates([
        { offset: P, bytes: zeroed },
        { offset: P, bytes: moved },
      ]),
    ).toEqual([]);
  });
});
