import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Repeatable pseudo-random numbers (xorshift32). */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** About `size` bytes of real machine code: the build host's own shared libraries, concatenated. */
export function realBinary(size: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/bin']) {
    let names: string[] = [];
    try {
      names = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(dir, name);
      try {
        const info = statSync(path);
        if (!info.isFile() || info.size < 64 * 1024) continue;
        const bytes = readFileSync(path);
        if (bytes.subarray(0, 4).toString('latin1') !== '\x7fELF') continue;
        parts.push(bytes);
        total += bytes.length;
      } catch {
        continue;
      }
      if (total >= size) return Buffer.concat(parts).subarray(0, size);
    }
  }
  throw new Error(`found only ${total} bytes of ELF files on this host`);
}

/**
 * A new build of the same binary, as a recompile gives it: code inserted at a few hundred places (so
 * everything after moves, which defeats block-wise rsync and btrfs send) and pointers changed here and there.
 */
export function rebuiltBinary(old: Buffer, seed = 7): Buffer {
  const random = prng(seed);
  const inserts = Array.from({ length: 300 }, () => Math.floor(random() * old.length)).sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let at = 0;
  for (const offset of inserts) {
    parts.push(old.subarray(at, offset));
    const insert = Buffer.alloc(16 + Math.floor(random() * 240));
    for (let i = 0; i < insert.length; i++) insert[i] = Math.floor(random() * 256);
    parts.push(insert);
    at = offset;
  }
  parts.push(old.subarray(at));
  const out = Buffer.concat(parts);
  for (let i = 0; i < 2000; i++)
    out.writeUInt32LE(Math.floor(random() * 2 ** 32), Math.floor(random() * (out.length - 4)));
  return out;
}
