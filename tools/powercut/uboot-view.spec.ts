import { crc32 } from 'node:zlib';
import {
  ENV_SIZE,
  checkLegacyImage,
  checkSuperblock,
  chooseEnv,
  crc32c,
  parseEnvCopy,
  rebuildSuperblock,
  ubootSuperblock,
} from './uboot-view';

/** An env copy as mkenvimage -r writes it: CRC, flag, then name=value\0 … \0\0. */
function envCopy(vars: Record<string, string>, flag: number): Buffer {
  const bytes = Buffer.alloc(ENV_SIZE);
  Buffer.from(
    Object.entries(vars)
      .map(([k, v]) => `${k}=${v}\0`)
      .join(''),
  ).copy(bytes, 5);
  bytes[4] = flag;
  bytes.writeUInt32LE(crc32(bytes.subarray(5)), 0);
  return bytes;
}

function legacyImage(data: Buffer): Buffer {
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x27051956, 0);
  header.writeUInt32BE(data.length, 12);
  header.writeUInt32BE(crc32(data), 24);
  header.write('cowroot', 32);
  header.writeUInt32BE(crc32(header), 4);
  return Buffer.concat([header, data]);
}

describe('u-boot view', () => {
  it('reads an env copy and rejects a torn one', () => {
    const good = parseEnvCopy('uboot.env', envCopy({ cowroot_current: '1', cowroot_state: 'requested' }, 3));
    expect(good).toMatchObject({ valid: true, flag: 3, vars: { cowroot_current: '1', cowroot_state: 'requested' } });
    const torn = envCopy({ cowroot_current: '1' }, 3);
    torn.fill(0xff, 512, 1024);
    expect(parseEnvCopy('uboot.env', torn)).toMatchObject({ valid: false, why: 'bad CRC' });
    expect(parseEnvCopy('uboot.env', null)).toMatchObject({ valid: false, why: 'file not readable' });
    expect(parseEnvCopy('uboot.env', Buffer.alloc(100))).toMatchObject({ valid: false, why: 'short file (100 bytes)' });
  });

  it('chooses between the copies as env_import_redund does', () => {
    const copy = (flag: number, valid = true) => ({ name: `f${flag}`, valid, flag, vars: {} });
    expect(chooseEnv(copy(1), copy(2))?.name).toBe('f2');
    expect(chooseEnv(copy(5), copy(4))?.name).toBe('f5');
    expect(chooseEnv(copy(255), copy(0))?.name).toBe('f0');
    expect(chooseEnv(copy(0), copy(255))?.name).toBe('f0');
    expect(chooseEnv(copy(3), copy(3))?.name).toBe('f3');
    expect(chooseEnv(copy(9), copy(2, false))?.name).toBe('f9');
    expect(chooseEnv(copy(1, false), copy(2))?.name).toBe('f2');
    expect(chooseEnv(copy(1, false), copy(2, false))).toBeNull();
  });

  it('checks legacy images like iminfo', () => {
    const image = legacyImage(Buffer.from('kernel bytes'.repeat(100)));
    expect(checkLegacyImage(image)).toEqual({ ok: true });
    const data = Buffer.from(image);
    data[200] ^= 1;
    expect(checkLegacyImage(data)).toEqual({ ok: false, why: 'bad data checksum' });
    const header = Buffer.from(image);
    header[40] ^= 1;
    expect(checkLegacyImage(header)).toEqual({ ok: false, why: 'bad header checksum' });
    expect(checkLegacyImage(image.subarray(0, 300)).why).toMatch(/truncated/);
    expect(checkLegacyImage(null)).toEqual({ ok: false, why: 'missing' });
  });

  it('checks a btrfs superblock copy (crc32c over bytes 32..4096)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const sb = Buffer.alloc(4096);
    sb.write('_BHRfS_M', 64, 'latin1');
    sb.writeBigUInt64LE(65536n, 48);
    sb.writeBigUInt64LE(42n, 72);
    sb.writeUInt32LE(crc32c(sb.subarray(32)), 0);
    expect(checkSuperblock(sb, 65536)).toEqual({ offset: 65536, valid: true, generation: 42 });
    expect(checkSuperblock(sb, 64 * 1024 * 1024).why).toBe('bad bytenr');
    const torn = Buffer.from(sb);
    torn.fill(0, 1024, 1536);
    torn[1100] = 1;
    expect(checkSuperblock(torn, 65536).why).toBe('bad checksum');
    expect(checkSuperblock(Buffer.alloc(4096), 65536).why).toBe('bad magic');
  });

  it('picks the superblock u-boot mounts, with and without the backup fallback', () => {
    const primary = { offset: 65536, valid: false, generation: 9, why: 'bad checksum' };
    const backup = { offset: 67108864, valid: true, generation: 8 };
    expect(ubootSuperblock([primary, backup], false)).toBeNull();
    expect(ubootSuperblock([primary, backup], true)).toBe(backup);
    expect(ubootSuperblock([{ ...primary, valid: true }, backup], false)?.offset).toBe(65536);
    expect(ubootSuperblock([primary, { ...backup, valid: false }], true)).toBeNull();
  });

  it('rebuilds a superblock from two torn copies of one commit, sector by sector, or says it cannot', () => {
    const copy = (generation: number, offset: number): Buffer => {
      const sb = Buffer.alloc(4096);
      sb.write('_BHRfS_M', 64, 'latin1');
      sb.writeBigUInt64LE(BigInt(offset), 48);
      sb.writeBigUInt64LE(BigInt(generation), 72);
      // what a commit changes beyond sector 0: the backup roots (sectors 5, 6)
      sb.writeBigUInt64LE(BigInt(generation * 1000), 0xb30);
      sb.writeBigUInt64LE(BigInt(generation * 1000 + 1), 0xc80);
      sb.writeUInt32LE(crc32c(sb.subarray(32)), 0);
      return sb;
    };
    const [p, b] = [65536, 64 * 1024 * 1024];
    // a write torn at 512 B: the kept sectors are the new copy's, the others the old one's
    const torn = (old: Buffer, fresh: Buffer, kept: number[]): Buffer => {
      const out = Buffer.from(old);
      for (const s of kept) fresh.copy(out, s * 512, s * 512, (s + 1) * 512);
      return out;
    };
    const primary = torn(copy(8, p), copy(9, p), [0, 5]);
    const backup = torn(copy(8, b), copy(9, b), [6, 7]);
    expect(checkSuperblock(primary, p).valid).toBe(false);
    expect(checkSuperblock(backup, b).valid).toBe(false);
    const rebuilt = rebuildSuperblock([
      { offset: p, bytes: primary },
      { offset: b, bytes: backup },
    ]);
    expect(rebuilt).toMatchObject({ from: [p, b], generation: 9 });
    expect(rebuilt!.primary.equals(copy(9, p))).toBe(true);
    // the old generation when only it can be put together (new sector 5 in neither copy)
    const old = rebuildSuperblock([
      { offset: p, bytes: torn(copy(8, p), copy(9, p), [0]) },
      { offset: b, bytes: torn(copy(8, b), copy(9, b), [6]) },
    ]);
    expect(old).toMatchObject({ from: [b, p], generation: 8 });
    // new sector 0 in both copies, new sector 6 in neither, old sector 0 in neither: nothing checks out
    expect(
      rebuildSuperblock([
        { offset: p, bytes: torn(copy(8, p), copy(9, p), [0, 5]) },
        { offset: b, bytes: torn(copy(8, b), copy(9, b), [0]) },
      ]),
    ).toBeNull();
  });
});
