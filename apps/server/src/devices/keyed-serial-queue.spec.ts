import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedSerialQueue } from './keyed-serial-queue';

describe(KeyedSerialQueue.name, () => {
  it('keeps per-key order even when an earlier task is slower, and runs other keys meanwhile', async () => {
    const queue = new KeyedSerialQueue();
    const log: string[] = [];
    const task = (name: string, ms: number) => () => sleep(ms).then(() => void log.push(name));
    const all = [queue.run('a', task('a1', 30)), queue.run('a', task('a2', 1)), queue.run('b', task('b1', 5))];
    await Promise.all(all);
    expect(log).toEqual(['b1', 'a1', 'a2']);
  });

  it('continues after a failed task and reports the failure to its caller only', async () => {
    const queue = new KeyedSerialQueue();
    const failed = queue.run('a', () => Promise.reject(new Error('boom')));
    const next = queue.run('a', async () => 'ok');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ok');
    await queue.drain();
  });
});
