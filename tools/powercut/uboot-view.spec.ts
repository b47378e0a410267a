import { crc32 } from 'node:zlib';
import {
  ENV_SIZE,
  checkLegacyImage,
  checkSuperblock,
  chooseEnv,
  crc32c,
  parseEnvCopy,
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
});
