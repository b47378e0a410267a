import { Logger } from '@nestjs/common';
import { GroupCommit } from './group-commit';

const logger = { error: jest.fn(), warn: jest.fn() } as unknown as Logger;

describe(GroupCommit.name, () => {
  it('puts the items of one turn in one batch, and those submitted while it runs in the next', async () => {
    const batches: number[][] = [];
    const commit = new GroupCommit<number, number>({
      logger,
      noun: 'item',
      write: async (batch) => {
        batches.push(batch);
        if (batch[0] === 1) late.push(commit.submit(4), commit.submit(5));
        await new Promise((resolve) => setTimeout(resolve, 5));
        return batch.map((n) => n * 10);
      },
    });
    const late: Array<Promise<number>> = [];
    const first = await Promise.all([commit.submit(1), commit.submit(2), commit.submit(3)]);
    expect(first).toEqual([10, 20, 30]);
    expect(await Promise.all(late)).toEqual([40, 50]);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  it('under load lets a small batch wait lingerMs for more items; an idle first batch goes at once', async () => {
    const batches: Array<{ items: number[]; at: number }> = [];
    const started = Date.now();
    const commit = new GroupCommit<number, number>({
      logger,
      noun: 'item',
      lingerMs: 40,
      write: async (batch) => {
        batches.push({ items: batch, at: Date.now() - started });
        // while the first batch runs one item arrives; a second comes 20 ms after it ended, within the linger
        if (batch[0] === 1) {
          late.push(commit.submit(2));
          setTimeout(() => late.push(commit.submit(3)), 25);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
        return batch;
      },
    });
    const late: Array<Promise<number>> = [];
    await commit.submit(1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await Promise.all(late);
    expect(batches.map((batch) => batch.items)).toEqual([[1], [2, 3]]);
    expect(batches[0].at).toBeLessThan(20);
    expect(batches[1].at).toBeGreaterThanOrEqual(40);
  });

  it('bounds a batch at maxBatch', async () => {
    const sizes: number[] = [];
    const commit = new GroupCommit<number, number>({
      logger,
      noun: 'item',
      maxBatch: 2,
      write: async (batch) => (sizes.push(batch.length), batch),
    });
    await Promise.all([1, 2, 3, 4, 5].map((n) => commit.submit(n)));
    expect(sizes).toEqual([2, 2, 1]);
  });

  it('on a data fault splits the batch until the refused item is alone; the others succeed, in order', async () => {
    const written: number[] = [];
    const commit = new GroupCommit<number, string>({
      logger,
      noun: 'item',
      refused: (n, error) => `refused ${n}: ${error.message}`,
      write: async (batch) => {
        if (batch.includes(3)) throw new RangeError('bad 3');
        written.push(...batch);
        return batch.map(String);
      },
    });
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => commit.submit(n)));
    expect(results).toEqual(['1', '2', 'refused 3: bad 3', '4', '5']);
    expect(written).toEqual([1, 2, 4, 5]);
  });

  it('rejects a refused item without `refused`, and every item of a batch that failed for another reason', async () => {
    let fail: Error = new TypeError('bad');
    const commit = new GroupCommit<number, number>({
      logger,
      noun: 'item',
      write: async (batch) => {
        if (batch.includes(2)) throw fail;
        return batch;
      },
    });
    const [one, two] = [commit.submit(1), commit.submit(2)];
    await expect(one).resolves.toBe(1);
    await expect(two).rejects.toThrow('bad');
    fail = new Error('connection lost');
    const both = [commit.submit(1), commit.submit(2)];
    await expect(both[0]).rejects.toThrow('connection lost');
    await expect(both[1]).rejects.toThrow('connection lost');
    await commit.drain();
  });
});
