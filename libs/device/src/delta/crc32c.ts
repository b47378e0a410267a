/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as btrfs send streams use it: seed 0 and no final
 * inversion (btrfs-progs send-stream.c `crc32c(0, buf, len)`, the kernel's `btrfs_crc32c(0, …)`), over
 * the command header with its crc field zeroed plus the attributes. Slice-by-8 tables: the device
 * recomputes this for every rebuilt WRITE, so it runs over every patched byte.
 */
const POLY = 0x82f63b78;

const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    tables[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = tables[0][n];
    for (let t = 1; t < 8; t++) {
      c = tables[0][c & 0xff] ^ (c >>> 8);
      tables[t][n] = c >>> 0;
    }
  }
  return tables;
})();

/** Continues a raw CRC-32C over `data` (pass the previous result as `crc` to chain buffers). */
export function crc32c(data: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let c = crc >>> 0;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  while (i < end8) {
    const a = c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    c =
      t7[a & 0xff] ^
      t6[(a >>> 8) & 0xff] ^
      t5[(a >>> 16) & 0xff] ^
      t4[a >>> 24] ^
      t3[data[i + 4]] ^
      t2[data[i + 5]] ^
      t1[data[i + 6]] ^
      t0[data[i + 7]];
    i += 8;
  }
  while (i < data.length) c = t0[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}
