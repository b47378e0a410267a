import { crc32c } from './crc32c';

describe('crc32c', () => {
  it('is CRC-32C: the standard check value with the usual pre- and post-inversion', () => {
    // RFC 3720 / iSCSI check value of "123456789"
    expect((~crc32c(Buffer.from('123456789'), 0xffffffff) >>> 0).toString(16)).toBe('e3069283');
  });

  it('chains over split buffers like over the whole (the slice-by-8 path and the byte tail agree)', () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31 + 7) & 0xff));
    const whole = crc32c(data);
    for (const cut of [1, 7, 8, 9, 500, 999]) {
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
    }
    expect(crc32c(Buffer.alloc(0), 1234)).toBe(1234);
  });
});
