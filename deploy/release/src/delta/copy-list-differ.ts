import { CopyList, MAX_COPY_INSTRUCTIONS } from '@cowroot/device';

/**
 * Finds a file's new data as stretches of its predecessor plus literal bytes (the copy list of format 3,
 * libs/device/src/delta/copy-list.ts), the way rsync and xdelta do: the predecessor's 32-byte blocks at
 * every 16th byte are indexed by a hash; the new data is walked, a match found through the index is
 * extended both ways, and after a match ends the walk first tries to go on at the same shift a few bytes
 * further (a changed word, a patched pointer), else looks the bytes up in the index again (code inserted
 * or removed: the shift changes). Greedy, one pass; the release tool keeps the copy list only when it is
 * smaller than the zstd patch of the same data.
 */
const BLOCK = 32;
const STRIDE = 16;
const TABLE_BITS = 23;
/** a copy shorter than this costs more in instructions than its bytes as literals */
const MIN_COPY = 24;
/** how far past a mismatch a match at the same shift is looked for */
const RESUME_WITHIN = 16;

function blockHash(bytes: Buffer, at: number): number {
  let hash = 0;
  for (let i = 0; i < BLOCK; i += 4) hash = (Math.imul(hash ^ bytes.readUInt32LE(at + i), 0x9e3779b1) + 0x7f4a7c15) | 0;
  return hash >>> (32 - TABLE_BITS);
}

/** Length of the common stretch of `a` from `ai` and `b` from `bi`. */
function matchLength(a: Buffer, ai: number, b: Buffer, bi: number): number {
  const max = Math.min(a.length - ai, b.length - bi);
  let n = 0;
  while (n + 64 <= max && a.compare(b, bi + n, bi + n + 64, ai + n, ai + n + 64) === 0) n += 64;
  while (n < max && a[ai + n] === b[bi + n]) n++;
  return n;
}

/** The copy list of `target` against `source`, or null when it needs more instructions than a device takes. */
export function diffCopyList(source: Buffer, target: Buffer): CopyList | null {
  const index = new Int32Array(1 << TABLE_BITS).fill(-1);
  for (let at = 0; at + BLOCK <= source.length; at += STRIDE) {
    const hash = blockHash(source, at);
    if (index[hash] < 0) index[hash] = at;
  }
  const list: CopyList = { adds: [], copies: [], jumps: [], literals: [] };
  let literalFrom = 0;
  /** the source position after the last copy */
  let cursor = 0;
  const copy = (from: number, to: number, length: number) => {
    list.adds.push(to - literalFrom);
    list.literals.push(target.subarray(literalFrom, to));
    list.jumps.push(from - cursor);
    list.copies.push(length);
    cursor = from + length;
    literalFrom = to + length;
  };
  let t = 0;
  while (t + BLOCK <= target.length && list.adds.length < MAX_COPY_INSTRUCTIONS) {
    let from = -1;
    let to = -1;
    // the same shift a few bytes on: bytes replaced in place
    for (let k = 0; k <= RESUME_WITHIN && t + k + MIN_COPY <= target.length; k++) {
      const s = cursor + (t - literalFrom) + k;
      if (s + MIN_COPY <= source.length && matchLength(source, s, target, t + k) >= MIN_COPY) {
        [from, to] = [s, t + k];
        break;
      }
    }
    for (let p = t; from < 0 && p + BLOCK <= target.length; p++) {
      const q = index[blockHash(target, p)];
      if (q >= 0 && source.compare(target, p, p + BLOCK, q, q + BLOCK) === 0) {
        let back = 0;
        while (p - back > literalFrom && q - back > 0 && target[p - back - 1] === source[q - back - 1]) back++;
        [from, to] = [q - back, p - back];
      }
    }
    if (from < 0) break;
    const length = matchLength(source, from, target, to);
    copy(from, to, length);
    t = to + length;
  }
  if (list.adds.length >= MAX_COPY_INSTRUCTIONS) return null;
  // the rest as literals (a last instruction that copies nothing)
  list.adds.push(target.length - literalFrom);
  list.literals.push(target.subarray(literalFrom));
  list.jumps.push(0);
  list.copies.push(0);
  return list;
}
