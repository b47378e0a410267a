import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enumerateCrashStates, type CrashState } from './crash-states';
import { LogFlag, parseWriteLog } from './log-writes.parser';
import { StateMaterializer } from './state-materializer';
import { encodeWriteLog, sectors } from './write-log.fixture';

describe(StateMaterializer.name, () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'powercut-materializer-'))));
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('replays durable writes, applies and reverts the unflushed ones, tears at sector granularity', async () => {
    const bytes = encodeWriteLog([
      { sector: 0, data: sectors(2, 0xa1) }, // 0
      { sector: 0, flags: LogFlag.flush }, // 1
      { sector: 1, data: sectors(3, 0xb2) }, // 2
      { sector: 6, data: sectors(1, 0xc3) }, // 3
    ]);
    await writeFile(join(dir, 'log'), bytes);
    await writeFile(join(dir, 'disk'), Buffer.alloc(8 * 512, 0x00));
    const log = parseWriteLog(bytes);
    const materializer = await StateMaterializer.open(join(dir, 'disk'), join(dir, 'log'), log);
    const sectorBytes = async () => [...(await readFile(join(dir, 'disk')))].filter((_, i) => i % 512 === 0);
    const state = (s: Partial<CrashState>): CrashState => ({
      id: 0,
      kind: 'subset',
      crashAfter: 3,
      durableThrough: 0,
      extra: [],
      torn: [],
      ...s,
    });
    try {
      await materializer.apply(state({ extra: [2, 3], torn: [{ entry: 2, sectors: [0, 2] }] }));
      expect(await sectorBytes()).toEqual([0xa1, 0xb2, 0, 0xb2, 0, 0, 0xc3, 0]);
      await materializer.revert();
      expect(await sectorBytes()).toEqual([0xa1, 0xa1, 0, 0, 0, 0, 0, 0]);
      await expect(materializer.apply(state({ durableThrough: -1 }))).rejects.toThrow(/goes back in the log/);
      await materializer.apply(state({ durableThrough: 3 }));
      expect(await sectorBytes()).toEqual([0xa1, 0xb2, 0xb2, 0xb2, 0, 0, 0xc3, 0]);
    } finally {
      await materializer.close();
    }
    // every enumerated state applies in order
    const again = await StateMaterializer.open(join(dir, 'disk'), join(dir, 'log'), log);
    try {
      for (const s of enumerateCrashStates(log.entries, { seed: 1 })) {
        await again.apply(s);
        await again.revert();
      }
    } finally {
      await again.close();
    }
  });
});
