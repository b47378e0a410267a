import { Arch } from '../kernel-images.service';

/** Legacy u-boot image header (include/image.h, struct legacy_img_hdr): 64 bytes, big-endian. */
export const UIMAGE_HEADER_BYTES = 64;
const UIMAGE_MAGIC = 0x27051956;
const ARCH_OFFSET = 29;

/** ih_arch values (include/image.h IH_ARCH_*) for the arches `cowroot-release build --arch` writes. */
const IH_ARCH: Record<Arch, number> = { arm: 2, x86: 3, arm64: 22 };
const KNOWN: Record<number, string> = {
  2: 'arm',
  3: 'x86',
  22: 'arm64',
  24: 'x86_64',
  26: 'riscv',
  5: 'mips',
  7: 'powerpc',
};

/** The arch a uImage header declares ('arm', 'x86', 'arm64', or `ih_arch <n>`); null when not a uImage. */
export function uImageArch(header: Buffer): string | null {
  if (header.length < UIMAGE_HEADER_BYTES || header.readUInt32BE(0) !== UIMAGE_MAGIC) return null;
  const value = header[ARCH_OFFSET];
  return KNOWN[value] ?? `ih_arch ${value}`;
}

export function uImageFitsArch(header: Buffer, arch: Arch): boolean {
  return (
    header.length >= UIMAGE_HEADER_BYTES &&
    header.readUInt32BE(0) === UIMAGE_MAGIC &&
    header[ARCH_OFFSET] === IH_ARCH[arch]
  );
}
