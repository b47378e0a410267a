import { isDataWrite, isFlush, isFua, type LogEntry } from './log-writes.parser';
import { seededRandom } from '@cowroot/testing/seeded-random';

/**
 * The disk contents a power cut can leave, from a write log (pure). The model (docs/boot-safety.md):
 *   - the cut comes after log entry `crashAfter` (every write up to it was issued; later ones never were);
 *   - every write before the last flush at or before `crashAfter` is on the disk (a flush returns only
 *     when everything completed before it is durable), and so is every FUA write;
 *   - of the writes since that flush, any subset reached the disk, and one of them may be torn: only
 *     some of its 512-byte sectors were written (a sector is the unit a disk writes atomically).
 * Flush states (the cut right after a flush, nothing since) are all enumerated; between two flushes a
 * seeded random sample is taken.
 */
export interface CrashState {
  /** position in this flow's state list: the number `--state` replays */
  id: number;
  /** superblocks: a commit's primary and backup superblock writes, each old, new or torn (both at once) */
  kind: 'before' | 'flush' | 'subset' | 'superblocks' | 'end';
  /** last log entry issued before the cut (-1: before the first) */
  crashAfter: number;
  /** every data write with an index up to this one is durable (-1: none) */
  durableThrough: number;
  /** data writes after durableThrough that also reached the disk, in log order */
  extra: number[];
  /** writes of `extra` that reached the disk only in part: the sector offsets (in the write) kept */
  torn: TornWrite[];
}

export interface TornWrite {
  entry: number;
  sectors: number[];
}

export interface EnumerateOptions {
  seed: number;
  /** random states per stretch of unflushed writes (default 3) */
  samplesPerEpoch?: number;
  /** probability that a sampled state tears one of its writes (default 0.5) */
  tearProbability?: number;
  /**
   * The log sectors of the btrfs superblock copies (primary first). When given, every stretch between
   * flushes that writes the primary and a backup also gets the states of those two writes each old, new
   * or torn, both torn included (superblockStates): the kernel submits the copies together.
   */
  superblockSectors?: number[];
}

interface Epoch {
  /** the flush that starts it (-1 for the start of the log) */
  flushIndex: number;
  writes: LogEntry[];
  /** index of the entry that ends it (the next flush), or the last entry of the log */
  endIndex: number;
}

function epochs(entries: LogEntry[]): Epoch[] {
  const result: Epoch[] = [];
  let current: Epoch = { flushIndex: -1, writes: [], endIndex: -1 };
  for (const entry of entries) {
    // a flush entry that also carries data (REQ_PREFLUSH + data) is a flush, then the write
    if (isFlush(entry)) {
      current.endIndex = entry.index;
      result.push(current);
      current = { flushIndex: entry.index, writes: [], endIndex: entry.index };
    }
    if (isDataWrite(entry)) current.writes.push(entry);
    current.endIndex = entry.index;
  }
  result.push(current);
  return result;
}

/** The key that makes two states the same disk image (the same writes, torn the same way). */
export function stateKey(state: Pick<CrashState, 'durableThrough' | 'extra' | 'torn'>): string {
  const torn = state.torn.map((t) => `${t.entry}:${t.sectors.join('.')}`).join('/');
  return `${state.durableThrough}|${state.extra.join(',')}|${torn}`;
}

export function enumerateCrashStates(entries: LogEntry[], options: EnumerateOptions): CrashState[] {
  const random = seededRandom(options.seed);
  const perEpoch = options.samplesPerEpoch ?? 3;
  const tearProbability = options.tearProbability ?? 0.5;
  const states: CrashState[] = [];
  const seen = new Set<string>();
  const add = (state: Omit<CrashState, 'id'>): void => {
    const key = stateKey(state);
    if (seen.has(key)) return;
    seen.add(key);
    states.push({ ...state, id: states.length });
  };
  let durable = -1;
  // the superblock states draw from their own sequence: the other states stay those of the same seed
  const superRandom = seededRandom(options.seed ^ 0x5b5b5b5b);
  add({ kind: 'before', crashAfter: -1, durableThrough: -1, extra: [], torn: [] });
  for (const epoch of epochs(entries)) {
    if (epoch.flushIndex >= 0) {
      add({ kind: 'flush', crashAfter: epoch.flushIndex, durableThrough: durable, extra: [], torn: [] });
    }
    const writes = epoch.writes;
    for (let sample = 0; sample < perEpoch && writes.length > 0; sample++) {
      // the cut lands after one of this stretch's writes; only writes issued by then can be on the disk
      const cut = Math.floor(random() * writes.length);
      const issued = writes.slice(0, cut + 1);
      let extra = issued.filter((w) => isFua(w) || random() < 0.5);
      if (extra.length === 0) extra = [issued[Math.floor(random() * issued.length)]];
      let torn: TornWrite[] = [];
      const tearable = extra.filter((w) => w.nrSectors > 1 && !isFua(w));
      if (tearable.length > 0 && random() < tearProbability) {
        const victim = tearable[Math.floor(random() * tearable.length)];
        torn = [{ entry: victim.index, sectors: tear(victim, random) }];
      }
      add({
        kind: 'subset',
        crashAfter: writes[cut].index,
        durableThrough: durable,
        extra: extra.map((w) => w.index),
        torn,
      });
    }
    if (options.superblockSectors) {
      for (const state of superblockStates(writes, durable, options.superblockSectors, superRandom)) add(state);
    }
    // the next epoch starts after a flush: everything so far is durable
    if (writes.length > 0) durable = writes[writes.length - 1].index;
  }
  const last = entries[entries.length - 1];
  if (last && durable >= 0 && !isFlush(last)) {
    add({ kind: 'end', crashAfter: last.index, durableThrough: durable, extra: [], torn: [] });
  }
  return states;
}

/** A proper, non-empty part of a write's sectors (all or nothing would be a state without the tear). */
function tear(write: LogEntry, random: () => number): number[] {
  const kept: number[] = [];
  for (let s = 0; s < write.nrSectors; s++) if (random() < 0.5) kept.push(s);
  if (kept.length === write.nrSectors) kept.splice(Math.floor(random() * kept.length), 1);
  if (kept.length === 0) kept.push(Math.floor(random() * write.nrSectors));
  return kept;
}

type Copy = 'old' | 'new' | 'torn';
/** primary × backup: every mix but both new (the next flush state); both torn twice (two tears) */
const SUPERBLOCK_MIXES: [Copy, Copy][] = [
  ['torn', 'torn'],
  ['torn', 'torn'],
  ['old', 'old'],
  ['torn', 'old'],
  ['old', 'torn'],
  ['torn', 'new'],
  ['new', 'torn'],
  ['old', 'new'],
  ['new', 'old'],
];

/**
 * The states of one stretch between flushes that writes the primary superblock and a backup copy (one
 * btrfs commit: write_dev_supers() submits every copy before it waits for any): the cut after the later
 * of the two, each copy old (not written), new or torn, the stretch's other writes a seeded subset.
 */
export function superblockStates(
  writes: LogEntry[],
  durableThrough: number,
  superblockSectors: number[],
  random: () => number,
): Omit<CrashState, 'id'>[] {
  const hits = (entry: LogEntry, sector: number): boolean =>
    entry.sector <= sector && sector < entry.sector + entry.nrSectors;
  const [primarySector, ...backupSectors] = superblockSectors;
  const primary = writes.filter((w) => hits(w, primarySector)).pop();
  const backup = writes.filter((w) => backupSectors.some((b) => hits(w, b))).pop();
  if (!primary || !backup) return [];
  const cut = Math.max(primary.index, backup.index);
  const others = writes.filter((w) => w.index <= cut && w !== primary && w !== backup);
  return SUPERBLOCK_MIXES.map(([p, b]) => {
    const extra = others.filter((w) => isFua(w) || random() < 0.5);
    const torn: TornWrite[] = [];
    for (const [copy, write] of [
      [p, primary],
      [b, backup],
    ] as const) {
      if (copy === 'old') continue;
      extra.push(write);
      if (copy === 'torn') torn.push({ entry: write.index, sectors: tear(write, random) });
    }
    extra.sort((x, y) => x.index - y.index);
    return { kind: 'superblocks', crashAfter: cut, durableThrough, extra: extra.map((w) => w.index), torn };
  });
}

/** A summary for the report: the writes of a state, in words. */
export function describeState(state: CrashState): string {
  const torn = state.torn.map((t) => `, write ${t.entry} torn (sectors ${t.sectors.join(',')})`).join('');
  const extra = state.extra.length ? `, then writes ${state.extra.join(',')} of the unflushed ones${torn}` : '';
  return `${state.kind}: cut after log entry ${state.crashAfter}; durable through write ${state.durableThrough}${extra}`;
}
