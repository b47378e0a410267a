import { enumerateCrashStates, stateKey, superblockStates } from './crash-states';
import { LogFlag, parseWriteLog } from './log-writes.parser';
import { encodeWriteLog, sectors } from './write-log.fixture';

const log = parseWriteLog(
  encodeWriteLog([
    { sector: 0, data: sectors(4, 1) }, // 0
    { sector: 8, data: sectors(2, 2) }, // 1
    { sector: 0, flags: LogFlag.flush }, // 2
    { sector: 16, data: sectors(8, 3) }, // 3
    { sector: 32, data: sectors(1, 4), flags: LogFlag.fua }, // 4
    { sector: 40, data: sectors(3, 5) }, // 5
    { sector: 0, flags: LogFlag.flush }, // 6
    { sector: 48, data: sectors(2, 6) }, // 7
  ]),
);

describe('enumerateCrashStates', () => {
  const states = enumerateCrashStates(log.entries, { seed: 7, samplesPerEpoch: 20 });

  it('has the state before any write, one per flush and the end, with everything before a flush durable', () => {
    expect(states[0]).toMatchObject({ kind: 'before', durableThrough: -1, extra: [] });
    expect(states.filter((s) => s.kind === 'flush').map((s) => [s.crashAfter, s.durableThrough])).toEqual([
      [2, 1],
      [6, 5],
    ]);
    expect(states[states.length - 1]).toMatchObject({ kind: 'end', durableThrough: 7 });
    expect(states.map((s) => s.id)).toEqual(states.map((_, i) => i));
  });

  it('samples only writes issued before the cut and after the last flush, FUA writes always in', () => {
    const subsets = states.filter((s) => s.kind === 'subset');
    expect(subsets.length).toBeGreaterThan(5);
    for (const state of subsets) {
      expect(state.extra.length).toBeGreaterThan(0);
      for (const index of state.extra) {
        expect(index).toBeGreaterThan(state.durableThrough);
        expect(index).toBeLessThanOrEqual(state.crashAfter);
        expect([2, 6]).not.toContain(index);
      }
      if (state.crashAfter >= 4 && state.durableThrough === 1) expect(state.extra).toContain(4);
    }
  });

  it('tears a write into a proper, non-empty part of its sectors', () => {
    const torn = states.filter((s) => s.torn.length > 0);
    expect(torn.length).toBeGreaterThan(0);
    for (const state of torn) {
      expect(state.torn).toHaveLength(1);
      const entry = log.entries[state.torn[0].entry];
      expect(state.extra).toContain(entry.index);
      expect(state.torn[0].sectors.length).toBeGreaterThan(0);
      expect(state.torn[0].sectors.length).toBeLessThan(entry.nrSectors);
      expect(entry.flags & LogFlag.fua).toBe(0);
    }
  });

  it('is distinct and reproducible from its seed', () => {
    expect(new Set(states.map(stateKey)).size).toBe(states.length);
    expect(enumerateCrashStates(log.entries, { seed: 7, samplesPerEpoch: 20 })).toEqual(states);
    expect(enumerateCrashStates(log.entries, { seed: 8, samplesPerEpoch: 20 })).not.toEqual(states);
  });

  it('tears the primary and the backup superblock of one commit together: both torn, both old, mixed', () => {
    // one commit between flushes: a tree block, the backup copy (sector 96), the primary (sector 16)
    const commit = parseWriteLog(
      encodeWriteLog([
        { sector: 200, data: sectors(8, 1) }, // 0
        { sector: 0, flags: LogFlag.flush }, // 1
        { sector: 96, data: sectors(8, 2) }, // 2
        { sector: 300, data: sectors(2, 3) }, // 3
        { sector: 16, data: sectors(8, 4) }, // 4
        { sector: 0, flags: LogFlag.flush }, // 5
      ]),
    );
    const writes = commit.entries.filter((e) => e.index >= 2 && e.index <= 4);
    const mixes = superblockStates(writes, 0, [16, 96], () => 0.3);
    const copy = (state: (typeof mixes)[number], entry: number): string =>
      state.torn.some((t) => t.entry === entry) ? 'torn' : state.extra.includes(entry) ? 'new' : 'old';
    expect(mixes.map((m) => `${copy(m, 4)}/${copy(m, 2)}`)).toEqual([
      'torn/torn',
      'torn/torn',
      'old/old',
      'torn/old',
      'old/torn',
      'torn/new',
      'new/torn',
      'old/new',
      'new/old',
    ]);
    for (const m of mixes) {
      expect(m).toMatchObject({ kind: 'superblocks', crashAfter: 4, durableThrough: 0 });
      for (const t of m.torn) expect(t.sectors.length).toBeGreaterThan(0);
      for (const t of m.torn) expect(t.sectors.length).toBeLessThan(8);
    }
    const all = enumerateCrashStates(commit.entries, { seed: 3, samplesPerEpoch: 2, superblockSectors: [16, 96] });
    expect(all.filter((s) => s.kind === 'superblocks' && s.torn.length === 2).length).toBeGreaterThan(0);
    // a stretch with the primary only (no backup in it) has no such states
    expect(
      superblockStates(
        writes.filter((w) => w.index !== 2),
        0,
        [16, 96],
        () => 0.3,
      ),
    ).toEqual([]);
  });
});
